// Unix-domain stream sockets (uv_pipe_t): the diagnostic console's PATH.sock listener and
// the client side of `possync console --socket PATH.sock`.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/result.h"
#include "uv/handle.h"
#include "uv/stream.h"

struct uv_pipe_s;

namespace possync::uv {

class PipeStream final : public Stream {
public:
    using ConnectCallback = std::function<void(Result<Owned<PipeStream>>)>;

    // Connects to the socket at `path`. Errc::TooLarge at once for a path longer than a
    // sockaddr_un holds; otherwise `callback` runs once with the stream or Errc::Io
    // ("connect /x.sock: no such file or directory"), unless the PendingConnect is
    // destroyed first (= cancel).
    static Result<std::unique_ptr<PendingConnect>> connect(Loop& loop, const std::string& path,
                                                           ConnectCallback callback);

private:
    friend class PipeListener;
    explicit PipeStream(Loop& loop);
    static Result<Owned<PipeStream>> make(Loop& loop);
    uv_pipe_s* raw() const;
};

class PipeListener final : public Handle {
public:
    using ConnectionCallback = std::function<void(Owned<PipeStream>)>;

    // Listens on `path`. A stale socket file (nobody accepts on it) is removed first;
    // Errc::Exists if a live process listens there or the path is not a socket.
    // The socket file is mode 0660 (owner and group only, whatever the umask), and is removed
    // again when the listener closes.
    static Result<Owned<PipeListener>> create(Loop& loop, const std::string& path,
                                              ConnectionCallback callback, int backlog = 16);

    const std::string& path() const { return path_; }

private:
    PipeListener(Loop& loop, std::string path);
    uv_pipe_s* raw() const;
    void onConnection(int status);
    void onClosing() override;

    std::string path_;
    ConnectionCallback callback_;
    bool bound_ = false;
    unsigned accepted_ = 0;
};

}  // namespace possync::uv
