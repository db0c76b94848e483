#include "uv/poll.h"

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

static_assert(int(Poll::Readable) == int(UV_READABLE) && int(Poll::Writable) == int(UV_WRITABLE) &&
              int(Poll::Disconnect) == int(UV_DISCONNECT) && int(Poll::Prioritized) == int(UV_PRIORITIZED));

Poll::Poll(Loop& loop, int fd) : Handle(loop, UV_POLL), fd_(fd) {}

uv_poll_t* Poll::raw() const {
    return reinterpret_cast<uv_poll_t*>(rawHandle());
}

Result<Owned<Poll>> Poll::create(Loop& loop, int fd) {
    Owned<Poll> self(new Poll(loop, fd));
    int rc = uv_poll_init(loop.raw(), self->raw(), fd);
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_poll_init(fd " + std::to_string(fd) + ")");
    }
    return self;
}

Status Poll::start(int events, Callback callback) {
    if (closing()) return closedError("poll");
    callback_ = std::move(callback);
    int rc = uv_poll_start(raw(), events, [](uv_poll_t* h, int status, int ev) {
        auto* self = static_cast<Poll*>(h->data);
        if (self->closing()) return;
        if (status < 0)
            invokeSlot(self->callback_, Status(uvError(status, "poll fd " + std::to_string(self->fd_))), 0);
        else
            invokeSlot(self->callback_, Status(), ev);
    });
    return uvStatus(rc, "uv_poll_start(fd " + std::to_string(fd_) + ")");
}

void Poll::stop() {
    if (!closing()) uv_poll_stop(raw());
}

}  // namespace possync::uv
