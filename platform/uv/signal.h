// Signal: runs a callback on the loop when the process receives a signal (uv_signal_t),
// e.g. SIGTERM/SIGINT (stop) and SIGHUP (reload) in the daemon.
#pragma once

#include <functional>

#include "base/result.h"
#include "uv/handle.h"

struct uv_signal_s;

namespace possync::uv {

class Signal final : public Handle {
public:
    // Starts watching `signum` at once; `callback` receives the signal number.
    // Errc::Io for an invalid signal number.
    static Result<Owned<Signal>> create(Loop& loop, int signum, std::function<void(int)> callback);

    void stop();

private:
    explicit Signal(Loop& loop);
    uv_signal_s* raw() const;

    std::function<void(int)> callback_;
};

}  // namespace possync::uv
