#include "uv/signal.h"

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

Signal::Signal(Loop& loop) : Handle(loop, UV_SIGNAL) {}

uv_signal_t* Signal::raw() const {
    return reinterpret_cast<uv_signal_t*>(rawHandle());
}

Result<Owned<Signal>> Signal::create(Loop& loop, int signum, std::function<void(int)> callback) {
    Owned<Signal> self(new Signal(loop));
    int rc = uv_signal_init(loop.raw(), self->raw());
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_signal_init");
    }
    self->callback_ = std::move(callback);
    rc = uv_signal_start(
        self->raw(),
        [](uv_signal_t* h, int sig) {
            auto* s = static_cast<Signal*>(h->data);
            if (!s->closing()) invokeSlot(s->callback_, sig);
        },
        signum);
    if (rc < 0) return uvError(rc, "uv_signal_start(" + std::to_string(signum) + ")");
    return self;
}

void Signal::stop() {
    if (!closing()) uv_signal_stop(raw());
}

}  // namespace possync::uv
