// Stream: the common base of TCP and Unix-socket streams: reading with flow control,
// owned-buffer writes (one or many buffers per uv_write), write-queue accounting, shutdown.
//
// Callback contracts (besides the lifetime rules of handle.h):
// - onData's bytes point into the stream's read buffer and are valid only during the
//   call: decode in place or copy.
// - onEnd runs once when reading ends: ok = the peer closed its side (EOF), an error =
//   the read failed (reset, timeout). Reading is stopped afterwards.
// - A write's buffers are owned by the request until it completes. `done` runs once with
//   ok or Errc::Io, unless the stream was closed first (then never). If write() itself
//   returns an error, `done` is never called (the libuv rule).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "uv/handle.h"

struct uv_stream_s;
struct uv_connect_s;
struct uv_getaddrinfo_s;
struct addrinfo;

namespace possync::uv {

class PendingConnect;

class Stream : public Handle {
public:
    using DataCallback = std::function<void(Bytes data)>;
    using EndCallback = std::function<void(Status status)>;
    using WriteCallback = std::function<void(Status status)>;

    // Size of the read buffer: the most bytes one onData call delivers.
    static constexpr size_t kReadBufferBytes = size_t(64) * 1024;

    // Starts reading with these callbacks (replacing earlier ones). Errc::Closed once
    // closing or after onEnd; Errc::Io if libuv refuses.
    Status startRead(DataCallback onData, EndCallback onEnd);
    // Stops delivering data (flow control: the peer's writes then back up into its own
    // queue). Safe inside onData. resumeRead() restarts with the same callbacks.
    void stopRead();
    Status resumeRead();
    bool reading() const { return reading_; }

    // Queues one owned buffer. Empty data is Errc::InvalidArgument.
    Status write(std::vector<uint8_t> data, WriteCallback done = {});
    // Queues a buffer shared with other writers (the same FULL snapshot chunk to several
    // slaves): the request holds a reference until it completes, nothing is copied.
    Status writeShared(std::shared_ptr<const std::vector<uint8_t>> data, WriteCallback done = {});
    // Queues several owned buffers as ONE uv_write (one writev when the socket takes it
    // all). Empty buffers are skipped; all empty is Errc::InvalidArgument.
    Status writev(std::vector<std::vector<uint8_t>> buffers, WriteCallback done = {});
    // Bytes handed to write()/writev() that the kernel has not taken yet (libuv's write
    // queue, uv_stream_get_write_queue_size): it grows while the peer does not read.
    // Flow control compares it to a limit before queueing more. Bytes the kernel took
    // count no more, even though their `done` callbacks run on a later loop turn (so many
    // small writes within one turn to a reading peer do not look like a backlog).
    size_t writeQueueBytes() const;
    // Writes whose `done` has not run yet (queued, or taken but not yet reported).
    size_t writesInFlight() const { return writesInFlight_; }

    // Half-closes the write side after queued writes complete. `done` as for writes.
    Status shutdown(WriteCallback done = {});

    // The other end, for logs: "127.0.0.1:43210", "[::1]:7000", or a socket path.
    const std::string& peerName() const { return peerName_; }

protected:
    Stream(Loop& loop, int uvHandleType);
    uv_stream_s* rawStream() const;
    void setPeerName(std::string name) { peerName_ = std::move(name); }

private:
    friend class PendingConnect;
    struct WriteRequest;
    struct ShutdownRequest;

    Status submit(std::unique_ptr<WriteRequest> request, const void* bufs, unsigned count);
    void onRead(long nread);

    DataCallback onData_;
    EndCallback onEnd_;
    std::unique_ptr<uint8_t[]> readBuffer_;
    std::string peerName_;
    size_t writesInFlight_ = 0;
    bool reading_ = false;
    bool ended_ = false;
};

// A connection attempt in progress (TcpStream::connect, PipeStream::connect), including the
// resolution of a host name before it. Destroying it cancels the attempt (and a resolve
// still running): the callback is then never called. It may be destroyed from inside its
// own callback.
class PendingConnect final {
public:
    ~PendingConnect();
    PendingConnect(const PendingConnect&) = delete;
    PendingConnect& operator=(const PendingConnect&) = delete;

private:
    friend class TcpStream;
    friend class PipeStream;
    struct Request;
    using Callback = std::function<void(Result<Owned<Stream>>)>;

    PendingConnect(Owned<Stream> stream, std::string target, Callback callback);
    // A fresh request for uv_<type>_connect (its data points at this object).
    uv_connect_s* request();
    // uv_<type>_connect failed synchronously: the request never reaches libuv.
    void abandon();
    static void onConnect(uv_connect_s* request, int status);

    // Resolving a name (tcp.cc): the getaddrinfo request frees itself when libuv reports it;
    // `resolved_` then gets the numeric addresses and starts `attempt_`, one connect per
    // address until one answers. Such a PendingConnect has no stream_ of its own.
    struct Resolve;
    using ResolvedCallback = std::function<void(int status, std::vector<std::string> addresses)>;
    static void onResolved(uv_getaddrinfo_s* request, int status, addrinfo* result);
    static void cancel(Resolve* resolve);

    Owned<Stream> stream_;
    std::string target_;
    Callback callback_;
    Request* request_ = nullptr;
    Resolve* resolve_ = nullptr;
    ResolvedCallback resolved_;
    std::unique_ptr<PendingConnect> attempt_;
};

}  // namespace possync::uv
