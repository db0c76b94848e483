// Idle: a callback run once per loop turn while started (uv_idle_t); the loop polls for
// I/O without blocking meanwhile. For long work cut into bounded batches, one per turn.
#pragma once

#include <functional>

#include "base/result.h"
#include "uv/handle.h"

struct uv_idle_s;

namespace possync::uv {

class Idle final : public Handle {
public:
    static Result<Owned<Idle>> create(Loop& loop);

    // Runs `callback` every turn until stop(). No effect once closing.
    void start(std::function<void()> callback);
    void stop();
    bool active() const;

private:
    explicit Idle(Loop& loop);
    uv_idle_s* raw() const;

    std::function<void()> callback_;
};

}  // namespace possync::uv
