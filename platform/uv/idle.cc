#include "uv/idle.h"

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

Idle::Idle(Loop& loop) : Handle(loop, UV_IDLE) {}

uv_idle_t* Idle::raw() const {
    return reinterpret_cast<uv_idle_t*>(rawHandle());
}

Result<Owned<Idle>> Idle::create(Loop& loop) {
    Owned<Idle> self(new Idle(loop));
    int rc = uv_idle_init(loop.raw(), self->raw());
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_idle_init");
    }
    return self;
}

void Idle::start(std::function<void()> callback) {
    if (closing()) return;
    callback_ = std::move(callback);
    uv_idle_start(raw(), [](uv_idle_t* h) {
        auto* self = static_cast<Idle*>(h->data);
        if (!self->closing()) invokeSlot(self->callback_);
    });
}

void Idle::stop() {
    if (!closing()) uv_idle_stop(raw());
}

bool Idle::active() const {
    return !closing() && uv_is_active(rawHandle());
}

}  // namespace possync::uv
