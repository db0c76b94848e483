// DirLock: the daemon's ownership of a data directory, an flock on DIR/possyncd.lock.
//
// A data directory belongs to one possyncd for the daemon's whole lifetime: its role, store id
// and generation must never change under a running daemon. The daemon takes this lock before
// it opens the store (so before anything can change possync.meta) and holds it until it exits;
// the kernel drops it when the process dies, so a crashed daemon leaves nothing to clean up. The
// lock file holds the holder's pid so a refused daemon can name it.
//
// Only daemons take it: the possync tool and POS applications (libpossync) write through LMDB's
// own locking and keep working beside the daemon.
#pragma once

#include <memory>
#include <string>

#include "base/result.h"

namespace possync::store {

class DirLock final {
public:
    // Takes the lock, creating the directory (mode 0777 less the umask) and the lock file when
    // missing. Errc::Busy when another process holds it, with a message naming its pid.
    static Result<std::unique_ptr<DirLock>> acquire(const std::string& dir);
    ~DirLock();
    DirLock(const DirLock&) = delete;
    DirLock& operator=(const DirLock&) = delete;

    const std::string& path() const { return path_; }

private:
    DirLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    int fd_;
    std::string path_;
};

}  // namespace possync::store
