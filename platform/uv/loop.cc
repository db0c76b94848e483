// Loop and the Handle base: creation, run modes, and the close protocol of handle.h.
#include "uv/loop.h"

#include <chrono>
#include <csignal>
#include <cstring>

#include "uv/handle.h"
#include "uv/internal.h"

namespace possync::uv {

POSSYNC_LOG_CATEGORY(Uv)

void Loop::LoopFree::operator()(uv_loop_s* loop) const noexcept {
    delete loop;
}

Result<std::unique_ptr<Loop>> Loop::create() {
    // A peer that vanishes mid-write must give the writer EPIPE, not kill the daemon.
    // Every possync process that owns a loop talks to sockets, so this is set here once.
    std::signal(SIGPIPE, SIG_IGN);
    std::unique_ptr<Loop> self(new Loop());
    auto* raw = new uv_loop_t;
    int rc = uv_loop_init(raw);
    if (rc < 0) {
        delete raw;
        return uvError(rc, "uv_loop_init");
    }
    self->loop_.reset(raw);
    return self;
}

Loop::~Loop() {
    if (closed_ || !loop_) return;
    Status st = close();
    if (!st.ok()) {
        LOG(Uv, Error) << "loop destroyed while busy: " << st.error().message;
        // libuv still references this memory from handles nobody closed: leak it rather
        // than free memory that is in use.
        (void)loop_.release();
    }
}

bool Loop::run() {
    return uv_run(loop_.get(), UV_RUN_DEFAULT) != 0;
}
bool Loop::runOnce() {
    return uv_run(loop_.get(), UV_RUN_ONCE) != 0;
}
bool Loop::runNoWait() {
    return uv_run(loop_.get(), UV_RUN_NOWAIT) != 0;
}
void Loop::stop() {
    uv_stop(loop_.get());
}

uint64_t Loop::nowMs() const {
    return uv_now(loop_.get());
}
void Loop::updateTime() {
    uv_update_time(loop_.get());
}

uint64_t Loop::wallMs() {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count());
}

namespace {

struct Walk {
    Loop* loop;
    size_t owned = 0;    // wrappers whose owner still holds them
    size_t foreign = 0;  // handles made with raw libuv by other platform code
};

}  // namespace

Status Loop::close() {
    if (closed_) return {};
    closing_ = true;
    uv_loop_t* raw = loop_.get();
    Walk walk{this};
    // Close callbacks of foreign handles may close more handles; a few rounds settle it.
    for (int round = 0; round < 4; ++round) {
        uv_walk(
            raw,
            [](uv_handle_t* h, void* arg) {
                auto* w = static_cast<Walk*>(arg);
                if (uv_is_closing(h)) return;
                auto* wrapper = static_cast<Handle*>(h->data);
                if (w->loop->owns(wrapper)) {
                    wrapper->closeFromLoop();
                    ++w->owned;
                } else {
                    uv_close(h, nullptr);
                    ++w->foreign;
                }
            },
            &walk);
        uv_run(raw, UV_RUN_DEFAULT);
        if (!uv_loop_alive(raw)) break;
    }
    if (walk.owned || walk.foreign) {
        LOG(Uv, Debug) << "loop close: closed " << walk.owned << " owned and " << walk.foreign
                       << " foreign handles";
    }
    int rc = uv_loop_close(raw);
    if (rc < 0) {
        size_t open = 0;
        uv_walk(
            raw, [](uv_handle_t*, void* arg) { ++*static_cast<size_t*>(arg); }, &open);
        return makeError(Errc::Busy, "uv_loop_close: " + std::string(uv_strerror(rc)) + " (" +
                                         std::to_string(open) + " handles left)");
    }
    // Wrappers still owned by someone were closed above: they must never touch this loop.
    for (Handle* h : handles_) h->detach();
    handles_.clear();
    closed_ = true;
    return {};
}

// ---- Handle -------------------------------------------------------------------------

Handle::Handle(Loop& loop, int uvHandleType)
    : loop_(&loop),
      handle_(static_cast<uv_handle_t*>(
          ::operator new(uv_handle_size(static_cast<uv_handle_type>(uvHandleType))))) {
    std::memset(static_cast<void*>(handle_), 0, uv_handle_size(static_cast<uv_handle_type>(uvHandleType)));
    handle_->data = this;
    loop.add(this);
}

Handle::~Handle() {
    if (loop_) loop_->remove(this);
    ::operator delete(handle_);
}

void Handle::setRef(bool ref) {
    if (closing_) return;
    if (ref)
        uv_ref(handle_);
    else
        uv_unref(handle_);
}

void Handle::beginClose() {
    closing_ = true;
    onClosing();
    uv_close(handle_, &Handle::onClosed);
}

void Handle::release() {
    ownerGone_ = true;
    if (!initialized_ || closed_) {
        delete this;
        return;
    }
    if (!closing_) beginClose();
}

void Handle::closeFromLoop() {
    if (!closing_) beginClose();
}

void Handle::onClosed(uv_handle_t* h) {
    auto* self = static_cast<Handle*>(h->data);
    self->closed_ = true;
    if (self->ownerGone_) delete self;
}

}  // namespace possync::uv
