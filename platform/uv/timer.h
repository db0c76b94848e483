// Timer: a one-shot or repeating timer on the loop clock (uv_timer_t).
#pragma once

#include <cstdint>
#include <functional>

#include "base/result.h"
#include "uv/handle.h"

struct uv_timer_s;

namespace possync::uv {

class Timer final : public Handle {
public:
    static Result<Owned<Timer>> create(Loop& loop);

    // Calls `callback` after timeoutMs, then every repeatMs if repeatMs > 0. Restarts a
    // running timer. No effect once closing.
    void start(uint64_t timeoutMs, uint64_t repeatMs, std::function<void()> callback);
    void stop();
    // Restarts a repeating timer from now with its repeat interval (uv_timer_again):
    // a heartbeat timeout pushed back by traffic. No effect if never started.
    void again();
    bool active() const;

private:
    explicit Timer(Loop& loop);
    uv_timer_s* raw() const;

    std::function<void()> callback_;
};

}  // namespace possync::uv
