// FsEvent: a callback when one file changes (uv_fs_event_t; inotify on Linux).
// The store's cross-process commit notification: another process touches
// DIR/possync.notify (utimensat) after each commit and the daemon wakes at once.
// The watch follows the file's inode: writers must touch or write it, not replace it.
#pragma once

#include <functional>
#include <string>

#include "base/result.h"
#include "uv/handle.h"

struct uv_fs_event_s;

namespace possync::uv {

class FsEvent final : public Handle {
public:
    // status: ok for a change (content or attributes), or Errc::Io if watching failed.
    using Callback = std::function<void(Status status)>;

    // Starts watching `path`, which must exist (Errc::Io "...: no such file or directory").
    static Result<Owned<FsEvent>> create(Loop& loop, const std::string& path, Callback callback);

    void stop();
    const std::string& path() const { return path_; }

private:
    FsEvent(Loop& loop, std::string path);
    uv_fs_event_s* raw() const;

    std::string path_;
    Callback callback_;
};

}  // namespace possync::uv
