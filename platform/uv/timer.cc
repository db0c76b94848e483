#include "uv/timer.h"

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

Timer::Timer(Loop& loop) : Handle(loop, UV_TIMER) {}

uv_timer_t* Timer::raw() const {
    return reinterpret_cast<uv_timer_t*>(rawHandle());
}

Result<Owned<Timer>> Timer::create(Loop& loop) {
    Owned<Timer> self(new Timer(loop));
    int rc = uv_timer_init(loop.raw(), self->raw());
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_timer_init");
    }
    return self;
}

void Timer::start(uint64_t timeoutMs, uint64_t repeatMs, std::function<void()> callback) {
    if (closing()) return;
    callback_ = std::move(callback);
    uv_timer_start(
        raw(),
        [](uv_timer_t* t) {
            auto* self = static_cast<Timer*>(t->data);
            if (!self->closing()) invokeSlot(self->callback_);
        },
        timeoutMs, repeatMs);
}

void Timer::stop() {
    if (!closing()) uv_timer_stop(raw());
}

void Timer::again() {
    if (!closing() && callback_) uv_timer_again(raw());
}

bool Timer::active() const {
    return !closing() && uv_is_active(rawHandle());
}

}  // namespace possync::uv
