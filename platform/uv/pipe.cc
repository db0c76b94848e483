#include "uv/pipe.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

namespace {

constexpr size_t kMaxPath = sizeof(sockaddr_un::sun_path) - 1;

Status checkPathLength(const std::string& path) {
    if (path.empty()) return makeError(Errc::InvalidArgument, "empty socket path");
    if (path.size() > kMaxPath)
        return makeError(Errc::TooLarge, "socket path too long (" + std::to_string(path.size()) + " > " +
                                             std::to_string(kMaxPath) + " bytes): " + path);
    return {};
}

// Removes a socket file left by a process that died; refuses to touch a live socket or
// anything that is not a socket.
Status removeStaleSocket(const std::string& path) {
    struct stat st;
    if (lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return {};
        return makeError(Errc::Io, "stat " + path + ": " + std::strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode)) return makeError(Errc::Exists, path + " exists and is not a socket");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return makeError(Errc::Io, std::string("socket: ") + std::strerror(errno));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::close(fd);
    if (rc == 0) return makeError(Errc::Exists, "another process is listening on " + path);
    if (err != ECONNREFUSED) return makeError(Errc::Io, "probe " + path + ": " + std::strerror(err));
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return makeError(Errc::Io, "remove stale " + path + ": " + std::strerror(errno));
    return {};
}

}  // namespace

// ---- PipeStream ---------------------------------------------------------------------

PipeStream::PipeStream(Loop& loop) : Stream(loop, UV_NAMED_PIPE) {}

uv_pipe_t* PipeStream::raw() const {
    return reinterpret_cast<uv_pipe_t*>(rawStream());
}

Result<Owned<PipeStream>> PipeStream::make(Loop& loop) {
    Owned<PipeStream> self(new PipeStream(loop));
    int rc = uv_pipe_init(loop.raw(), self->raw(), 0);
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_pipe_init");
    }
    return self;
}

Result<std::unique_ptr<PendingConnect>> PipeStream::connect(Loop& loop, const std::string& path,
                                                            ConnectCallback callback) {
    POSSYNC_TRY(checkPathLength(path));
    auto made = make(loop);
    if (!made.ok()) return made.takeError();
    uv_pipe_t* pipe = made.value()->raw();
    std::unique_ptr<PendingConnect> pending(new PendingConnect(
        std::move(made).value(), path, [cb = std::move(callback)](Result<Owned<Stream>> r) {
            if (!r.ok()) {
                cb(r.takeError());
                return;
            }
            Owned<Stream> s = std::move(r).value();
            cb(Owned<PipeStream>(static_cast<PipeStream*>(s.release())));
        }));
    // uv_pipe_connect reports every failure through the callback.
    uv_pipe_connect(pending->request(), pipe, path.c_str(),
                    [](uv_connect_t* req, int status) { PendingConnect::onConnect(req, status); });
    return pending;
}

// ---- PipeListener -------------------------------------------------------------------

PipeListener::PipeListener(Loop& loop, std::string path)
    : Handle(loop, UV_NAMED_PIPE), path_(std::move(path)) {}

uv_pipe_t* PipeListener::raw() const {
    return reinterpret_cast<uv_pipe_t*>(rawHandle());
}

Result<Owned<PipeListener>> PipeListener::create(Loop& loop, const std::string& path,
                                                 ConnectionCallback callback, int backlog) {
    POSSYNC_TRY(checkPathLength(path));
    POSSYNC_TRY(removeStaleSocket(path));
    Owned<PipeListener> self(new PipeListener(loop, path));
    int rc = uv_pipe_init(loop.raw(), self->raw(), 0);
    if (rc < 0) {
        self->markInitFailed();
        return uvError(rc, "uv_pipe_init");
    }
    self->callback_ = std::move(callback);
    rc = uv_pipe_bind(self->raw(), path.c_str());
    if (rc == UV_EACCES) {
        // libuv reports a missing directory as EACCES (a compatibility quirk of uv_pipe_bind):
        // say what really is wrong, or a technician hunts for a permission problem.
        std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
        struct stat st;
        if (dir.empty()) dir = "/";
        if (::stat(dir.c_str(), &st) != 0 && errno == ENOENT)
            return makeError(Errc::NotFound, "bind " + path + ": no such directory: " + dir);
    }
    if (rc < 0) return uvError(rc, "bind " + path);
    self->bound_ = true;
    // Owner and group only, whatever the umask: whoever can connect gets a console that reads
    // every table. Set before listen(), so nobody connects under the umask's mode.
    if (::chmod(path.c_str(), 0660) != 0)
        return makeError(Errc::Io, "chmod " + path + ": " + std::strerror(errno));
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(self->raw()), backlog, [](uv_stream_t* s, int status) {
        static_cast<PipeListener*>(s->data)->onConnection(status);
    });
    if (rc < 0) return uvError(rc, "listen " + path);
    return self;
}

void PipeListener::onConnection(int status) {
    if (closing()) return;
    if (status < 0) {
        LOG(Uv, Warning) << "accept on " << path_ << ": " << uv_strerror(status);
        return;
    }
    auto made = PipeStream::make(*loop());
    if (!made.ok()) {
        LOG(Uv, Warning) << "accept on " << path_ << ": " << made.error().message;
        return;
    }
    Owned<PipeStream> stream = std::move(made).value();
    int rc = uv_accept(reinterpret_cast<uv_stream_t*>(raw()), reinterpret_cast<uv_stream_t*>(stream->raw()));
    if (rc < 0) {
        LOG(Uv, Warning) << "accept on " << path_ << ": " << uv_strerror(rc);
        return;
    }
    // Unix peers have no address of their own: name them by socket and arrival number.
    stream->setPeerName(path_ + "#" + std::to_string(++accepted_));
    invokeSlot(callback_, std::move(stream));
}

void PipeListener::onClosing() {
    if (bound_) ::unlink(path_.c_str());
}

}  // namespace possync::uv
