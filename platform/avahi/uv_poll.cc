#include "avahi/uv_poll.h"

#include "avahi/deadline.h"
#include "log/log.h"

namespace possync::avahi {

POSSYNC_LOG_DECLARE(Avahi);

// One Avahi watch. Owned by UvPoll::watches_; Avahi holds it as an opaque AvahiWatch*.
struct UvPoll::Watch {
    UvPoll* owner;
    FdWatchSet::WatchId id;
    int fd;
    AvahiWatchCallback callback;
    void* userdata;
    unsigned happened = 0;  // events being dispatched (watch_get_events)
};

// The one uv_poll_t of an fd. Heap-allocated; freed in its close callback.
struct UvPoll::FdPoll {
    uv_poll_t handle;
    int fd;
    UvPoll* owner;
    unsigned polling = 0;  // kIn|kOut currently requested from libuv (0 = stopped)
    bool failed = false;   // libuv reported an error and stopped the handle
};

// One Avahi timeout. Heap-allocated; freed in its close callback.
struct UvPoll::Timeout {
    uv_timer_t handle;
    UvPoll* owner;
    AvahiTimeoutCallback callback;
    void* userdata;
    timeval deadline{};  // while armed
};

namespace {

UvPoll* ownerOf(const AvahiPoll* api) {
    return static_cast<UvPoll*>(api->userdata);
}

int toUv(unsigned pollEvents) {
    int uv = 0;
    if (pollEvents & FdWatchSet::kIn) uv |= UV_READABLE;
    if (pollEvents & FdWatchSet::kOut) uv |= UV_WRITABLE;
    return uv;
}

unsigned fromUv(int uvEvents) {
    unsigned ev = 0;
    if (uvEvents & UV_READABLE) ev |= FdWatchSet::kIn;
    if (uvEvents & UV_WRITABLE) ev |= FdWatchSet::kOut;
    if (uvEvents & UV_DISCONNECT) ev |= FdWatchSet::kHup;
    return ev;
}

}  // namespace

UvPoll::UvPoll(uv_loop_t* loop) : loop_(loop) {
    api_.userdata = this;
    api_.watch_new = &UvPoll::watchNew;
    api_.watch_update = &UvPoll::watchUpdate;
    api_.watch_get_events = &UvPoll::watchGetEvents;
    api_.watch_free = &UvPoll::watchFree;
    api_.timeout_new = &UvPoll::timeoutNew;
    api_.timeout_update = &UvPoll::timeoutUpdate;
    api_.timeout_free = &UvPoll::timeoutFree;
}

UvPoll::~UvPoll() {
    if (!watches_.empty() || !timeouts_.empty())
        LOG(Avahi, Warning) << "AvahiPoll destroyed with " << watches_.size() << " watches and "
                            << timeouts_.size() << " timeouts still open (client not freed?)";
    for (auto& [fd, fp] : fds_) {
        (void)fd;
        uv_close(reinterpret_cast<uv_handle_t*>(&fp->handle),
                 [](uv_handle_t* h) { delete static_cast<FdPoll*>(h->data); });
    }
    for (Timeout* t : timeouts_) {
        uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
                 [](uv_handle_t* h) { delete static_cast<Timeout*>(h->data); });
    }
}

// ---- watches ----

AvahiWatch* UvPoll::watchNew(const AvahiPoll* api, int fd, AvahiWatchEvent event, AvahiWatchCallback callback,
                             void* userdata) {
    UvPoll* self = ownerOf(api);
    FdWatchSet::WatchId id = self->set_.add(fd, static_cast<unsigned>(event));
    int rc = self->syncFd(fd);
    if (rc != 0) {
        LOG(Avahi, Error) << "cannot poll fd " << fd << ": " << uv_strerror(rc);
        self->set_.remove(id);
        (void)self->syncFd(fd);
        return nullptr;
    }
    auto w = std::make_unique<Watch>(Watch{self, id, fd, callback, userdata});
    Watch* raw = w.get();
    self->watches_.emplace(id, std::move(w));
    return reinterpret_cast<AvahiWatch*>(raw);
}

void UvPoll::watchUpdate(AvahiWatch* aw, AvahiWatchEvent event) {
    Watch* w = reinterpret_cast<Watch*>(aw);
    UvPoll* self = w->owner;
    self->set_.update(w->id, static_cast<unsigned>(event));
    int rc = self->syncFd(w->fd);
    if (rc != 0) LOG(Avahi, Error) << "cannot poll fd " << w->fd << ": " << uv_strerror(rc);
}

AvahiWatchEvent UvPoll::watchGetEvents(AvahiWatch* aw) {
    return static_cast<AvahiWatchEvent>(reinterpret_cast<Watch*>(aw)->happened);
}

void UvPoll::watchFree(AvahiWatch* aw) {
    Watch* w = reinterpret_cast<Watch*>(aw);
    UvPoll* self = w->owner;
    int fd = w->fd;
    self->set_.remove(w->id);
    self->watches_.erase(w->id);  // frees w
    (void)self->syncFd(fd);
}

int UvPoll::syncFd(int fd) {
    auto it = fds_.find(fd);
    FdPoll* fp = it == fds_.end() ? nullptr : it->second;
    if (!set_.hasFd(fd)) {
        if (fp != nullptr) {
            // Closing stops polling at once (the fd may be closed by the caller right after).
            fds_.erase(it);
            uv_close(reinterpret_cast<uv_handle_t*>(&fp->handle),
                     [](uv_handle_t* h) { delete static_cast<FdPoll*>(h->data); });
        }
        return 0;
    }
    if (fp == nullptr) {
        fp = new FdPoll{};
        fp->fd = fd;
        fp->owner = this;
        int rc = uv_poll_init(loop_, &fp->handle, fd);
        if (rc != 0) {
            delete fp;
            return rc;
        }
        fp->handle.data = fp;
        fds_.emplace(fd, fp);
    }
    unsigned want = set_.mask(fd);
    if (want == fp->polling && !fp->failed) return 0;
    fp->failed = false;
    fp->polling = want;
    if (want == 0) return uv_poll_stop(&fp->handle);
    int rc = uv_poll_start(&fp->handle, toUv(want), &UvPoll::onPoll);
    if (rc != 0) fp->polling = 0;
    return rc;
}

void UvPoll::onPoll(uv_poll_t* handle, int status, int events) {
    FdPoll* fp = static_cast<FdPoll*>(handle->data);
    fp->owner->dispatch(fp, status, events);
}

void UvPoll::dispatch(FdPoll* fp, int status, int uvEvents) {
    int fd = fp->fd;
    unsigned happened;
    if (status < 0) {
        // libuv has stopped the handle. Tell the watches (libdbus then drops the
        // connection); polling resumes only when the watch set changes, so a broken fd
        // cannot spin the loop.
        LOG(Avahi, Debug) << "poll error on fd " << fd << ": " << uv_strerror(status);
        fp->failed = true;
        fp->polling = 0;
        happened = FdWatchSet::kErr | FdWatchSet::kHup;
    } else {
        happened = fromUv(uvEvents);
    }
    // Callbacks may add, update or free any watch (even this fd's last one, which closes
    // fp): work from a copy of the ids and re-check each before calling it.
    for (const FdWatchSet::Delivery& d : set_.deliveries(fd, happened)) {
        unsigned ev = set_.deliverable(d.id, happened);
        if (ev == 0) continue;
        auto it = watches_.find(d.id);
        if (it == watches_.end()) continue;
        Watch* w = it->second.get();
        w->happened = ev;
        w->callback(reinterpret_cast<AvahiWatch*>(w), fd, static_cast<AvahiWatchEvent>(ev), w->userdata);
        auto again = watches_.find(d.id);
        if (again != watches_.end()) again->second->happened = 0;
    }
}

// ---- timeouts ----

AvahiTimeout* UvPoll::timeoutNew(const AvahiPoll* api, const struct timeval* tv,
                                 AvahiTimeoutCallback callback, void* userdata) {
    UvPoll* self = ownerOf(api);
    Timeout* t = new Timeout{};
    t->owner = self;
    t->callback = callback;
    t->userdata = userdata;
    int rc = uv_timer_init(self->loop_, &t->handle);
    if (rc != 0) {  // cannot fail on Linux; keep the contract anyway
        LOG(Avahi, Error) << "uv_timer_init: " << uv_strerror(rc);
        delete t;
        return nullptr;
    }
    t->handle.data = t;
    self->timeouts_.insert(t);
    self->armTimeout(t, tv);
    return reinterpret_cast<AvahiTimeout*>(t);
}

void UvPoll::timeoutUpdate(AvahiTimeout* at, const struct timeval* tv) {
    Timeout* t = reinterpret_cast<Timeout*>(at);
    t->owner->armTimeout(t, tv);
}

void UvPoll::timeoutFree(AvahiTimeout* at) {
    Timeout* t = reinterpret_cast<Timeout*>(at);
    t->owner->timeouts_.erase(t);
    uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
             [](uv_handle_t* h) { delete static_cast<Timeout*>(h->data); });
}

void UvPoll::armTimeout(Timeout* t, const struct timeval* tv) {
    std::optional<uint64_t> delay = delayMsUntil(tv, wallClockNow());
    if (!delay) {
        uv_timer_stop(&t->handle);
        return;
    }
    t->deadline = *tv;
    // The loop's cached time may be stale inside a long callback; refresh it so the timer
    // does not fire before the wall-clock deadline.
    uv_update_time(loop_);
    uv_timer_start(&t->handle, &UvPoll::onTimer, *delay, 0);
}

void UvPoll::onTimer(uv_timer_t* handle) {
    // repeat = 0: the timer is already inactive, as Avahi expects ("the timeout is
    // disabled" after it fired); the callback may re-arm or free it.
    Timeout* t = static_cast<Timeout*>(handle->data);
    // A deadline beyond kMaxDelayMs was armed short: wait again for the rest.
    std::optional<uint64_t> left = delayMsUntil(&t->deadline, wallClockNow());
    if (left && *left > 0 && t->deadline.tv_sec != 0) {
        uv_timer_start(&t->handle, &UvPoll::onTimer, *left, 0);
        return;
    }
    t->callback(reinterpret_cast<AvahiTimeout*>(t), t->userdata);
}

}  // namespace possync::avahi
