#include "store/dir_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace possync::store {

Result<std::unique_ptr<DirLock>> DirLock::acquire(const std::string& dir) {
    if (dir.empty()) return makeError(Errc::InvalidArgument, "no data directory given (--data DIR)");
    // Mode 0777 (0666 for the file) less the umask, as LMDB's files: the packaged UMask decides.
    if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
        return makeError(Errc::Io, "cannot create data directory " + dir + ": " + strerror(errno));
    std::string path = dir + "/possyncd.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return makeError(Errc::Io, "cannot open " + path + ": " + strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int err = errno;
        std::string holder;
        char buf[32] = {};
        ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
        for (ssize_t i = 0; i < n && buf[i] >= '0' && buf[i] <= '9'; ++i) holder += buf[i];
        ::close(fd);
        if (err != EWOULDBLOCK) return makeError(Errc::Io, "cannot lock " + path + ": " + strerror(err));
        return makeError(Errc::Busy, dir + " is in use by another possyncd (pid " +
                                         (holder.empty() ? std::string("unknown") : holder) + ", lock " +
                                         path + "); one daemon per data directory");
    }
    // The pid is only for the message above; the flock itself is the lock.
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
        int err = errno;
        ::close(fd);
        return makeError(Errc::Io, "cannot write " + path + ": " + strerror(err));
    }
    return std::unique_ptr<DirLock>(new DirLock(fd, std::move(path)));
}

DirLock::~DirLock() {
    ::close(fd_);
}

}  // namespace possync::store
