// Poll: readiness of a file descriptor the caller owns (uv_poll_t), e.g. a serial tty.
// One Poll per fd (a libuv rule); the fd is not closed by the Poll.
#pragma once

#include <functional>

#include "base/result.h"
#include "uv/handle.h"

struct uv_poll_s;

namespace possync::uv {

class Poll final : public Handle {
public:
    // Event bits (the values of UV_READABLE, UV_WRITABLE, UV_DISCONNECT, UV_PRIORITIZED).
    enum Event : int { Readable = 1, Writable = 2, Disconnect = 4, Prioritized = 8 };
    // status: ok, or Errc::Io when polling failed (then `events` is 0).
    using Callback = std::function<void(Status status, int events)>;

    // Errc::Io when the fd cannot be polled (closed fd, regular file).
    static Result<Owned<Poll>> create(Loop& loop, int fd);

    // Watches `events` (a mask of Event); a second start() changes the mask and callback.
    Status start(int events, Callback callback);
    void stop();
    int fd() const { return fd_; }

private:
    Poll(Loop& loop, int fd);
    uv_poll_s* raw() const;

    int fd_;
    Callback callback_;
};

}  // namespace possync::uv
