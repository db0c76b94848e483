#include "uv/fs_event.h"

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

FsEvent::FsEvent(Loop& loop, std::string path) : Handle(loop, UV_FS_EVENT), path_(std::move(path)) {}

uv_fs_event_t* FsEvent::raw() const {
    return reinterpret_cast<uv_fs_event_t*>(rawHandle());
}

Result<Owned<FsEvent>> FsEvent::create(Loop& loop, const std::string& path, Callback callback) {
    Owned<FsEvent> self(new FsEvent(loop, path));
    int rc = uv_fs_event_init(loop.raw(), self->raw());
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_fs_event_init");
    }
    self->callback_ = std::move(callback);
    rc = uv_fs_event_start(
        self->raw(),
        [](uv_fs_event_t* h, const char*, int, int status) {
            auto* s = static_cast<FsEvent*>(h->data);
            if (s->closing()) return;
            if (status < 0)
                invokeSlot(s->callback_, Status(uvError(status, "watch " + s->path_)));
            else
                invokeSlot(s->callback_, Status());
        },
        self->path_.c_str(), 0);
    if (rc < 0) return uvError(rc, "watch " + path);
    return self;
}

void FsEvent::stop() {
    if (!closing()) uv_fs_event_stop(raw());
}

}  // namespace possync::uv
