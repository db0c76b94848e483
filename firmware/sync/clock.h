// Clock and Timers: the sync core's sense of time, injected so that unit tests move time
// explicitly (heartbeats, timeouts, backoff) instead of sleeping. Production: sync/uv_link.h.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "base/result.h"

namespace possync::sync {

class Clock {
public:
    virtual ~Clock() = default;
    // Monotonic milliseconds (the loop's time): deadlines and ages.
    virtual uint64_t nowMs() const = 0;
    // Wall-clock milliseconds since the epoch: Ping/Pong timestamps, lag from the master's time.
    virtual uint64_t wallMs() const = 0;
};

// A one-shot or repeating timer on the Clock's time. Its callback may start or stop it again;
// it is never called after stop() or after the Timer is destroyed.
class Timer {
public:
    virtual ~Timer() = default;
    virtual void start(uint64_t timeoutMs, uint64_t repeatMs, std::function<void()> callback) = 0;
    virtual void stop() = 0;
    virtual bool active() const = 0;
};

class Timers {
public:
    virtual ~Timers() = default;
    virtual Result<std::unique_ptr<Timer>> makeTimer() = 0;
};

}  // namespace possync::sync
