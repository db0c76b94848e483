#include "uv/stream.h"

#include "uv/internal.h"
#include "uv/loop.h"

namespace possync::uv {

struct Stream::WriteRequest {
    uv_write_t req;
    Stream* stream = nullptr;
    std::vector<uint8_t> one;
    std::vector<std::vector<uint8_t>> many;
    std::shared_ptr<const std::vector<uint8_t>> shared;
    WriteCallback done;
};

struct Stream::ShutdownRequest {
    uv_shutdown_t req;
    Stream* stream = nullptr;
    WriteCallback done;
};

Stream::Stream(Loop& loop, int uvHandleType) : Handle(loop, uvHandleType) {}

uv_stream_t* Stream::rawStream() const {
    return reinterpret_cast<uv_stream_t*>(rawHandle());
}

Status Stream::startRead(DataCallback onData, EndCallback onEnd) {
    if (closing() || ended_) return closedError("read " + peerName_);
    onData_ = std::move(onData);
    onEnd_ = std::move(onEnd);
    return resumeRead();
}

Status Stream::resumeRead() {
    if (closing() || ended_) return closedError("read " + peerName_);
    if (reading_) return {};
    if (!readBuffer_) readBuffer_ = std::make_unique<uint8_t[]>(kReadBufferBytes);
    int rc = uv_read_start(
        rawStream(),
        [](uv_handle_t* h, size_t, uv_buf_t* buf) {
            auto* self = static_cast<Stream*>(h->data);
            buf->base = reinterpret_cast<char*>(self->readBuffer_.get());
            buf->len = kReadBufferBytes;
        },
        [](uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
            static_cast<Stream*>(s->data)->onRead(static_cast<long>(nread));
        });
    if (rc < 0) return uvError(rc, "read " + peerName_);
    reading_ = true;
    return {};
}

void Stream::stopRead() {
    if (closing() || !reading_) return;
    uv_read_stop(rawStream());
    reading_ = false;
}

void Stream::onRead(long nread) {
    if (closing()) return;
    if (nread > 0) {
        invokeSlot(onData_, Bytes(readBuffer_.get(), static_cast<size_t>(nread)));
        return;
    }
    if (nread == 0) return;  // EAGAIN: nothing this time
    uv_read_stop(rawStream());
    reading_ = false;
    ended_ = true;
    Status end;
    if (nread != UV_EOF) end = uvError(static_cast<int>(nread), "read " + peerName_);
    invokeSlot(onEnd_, std::move(end));
}

size_t Stream::writeQueueBytes() const {
    return closing() ? 0 : uv_stream_get_write_queue_size(rawStream());
}

Status Stream::submit(std::unique_ptr<WriteRequest> w, const void* bufs, unsigned count) {
    w->stream = this;
    w->req.data = w.get();
    int rc = uv_write(&w->req, rawStream(), static_cast<const uv_buf_t*>(bufs), count,
                      [](uv_write_t* req, int status) {
                          std::unique_ptr<WriteRequest> done(static_cast<WriteRequest*>(req->data));
                          Stream* self = done->stream;
                          --self->writesInFlight_;
                          // Closed first (UV_ECANCELED): the owner is gone, stay silent.
                          if (self->closing() || !done->done) return;
                          if (status < 0)
                              done->done(uvError(status, "write to " + self->peerName_));
                          else
                              done->done(Status());
                      });
    if (rc < 0) return uvError(rc, "write to " + peerName_);
    ++writesInFlight_;
    (void)w.release();
    return {};
}

Status Stream::write(std::vector<uint8_t> data, WriteCallback done) {
    if (closing()) return closedError("write to " + peerName_);
    if (data.empty()) return makeError(Errc::InvalidArgument, "write to " + peerName_ + ": no data");
    auto w = std::make_unique<WriteRequest>();
    w->one = std::move(data);
    w->done = std::move(done);
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->one.data()), static_cast<unsigned>(w->one.size()));
    return submit(std::move(w), &buf, 1);
}

Status Stream::writeShared(std::shared_ptr<const std::vector<uint8_t>> data, WriteCallback done) {
    if (closing()) return closedError("write to " + peerName_);
    if (!data || data->empty())
        return makeError(Errc::InvalidArgument, "write to " + peerName_ + ": no data");
    auto w = std::make_unique<WriteRequest>();
    w->shared = std::move(data);
    w->done = std::move(done);
    // libuv never writes into a buffer it sends; the const_cast only fits uv_buf_t's type.
    uv_buf_t buf = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(w->shared->data())),
                               static_cast<unsigned>(w->shared->size()));
    return submit(std::move(w), &buf, 1);
}

Status Stream::writev(std::vector<std::vector<uint8_t>> buffers, WriteCallback done) {
    if (closing()) return closedError("write to " + peerName_);
    auto w = std::make_unique<WriteRequest>();
    w->many = std::move(buffers);
    w->done = std::move(done);
    std::vector<uv_buf_t> bufs;
    bufs.reserve(w->many.size());
    for (auto& b : w->many) {
        if (b.empty()) continue;
        bufs.push_back(uv_buf_init(reinterpret_cast<char*>(b.data()), static_cast<unsigned>(b.size())));
    }
    if (bufs.empty()) return makeError(Errc::InvalidArgument, "write to " + peerName_ + ": no data");
    // uv_write copies the uv_buf_t array itself; only the bytes must outlive the call.
    return submit(std::move(w), bufs.data(), static_cast<unsigned>(bufs.size()));
}

Status Stream::shutdown(WriteCallback done) {
    if (closing()) return closedError("shutdown " + peerName_);
    auto s = std::make_unique<ShutdownRequest>();
    s->stream = this;
    s->done = std::move(done);
    s->req.data = s.get();
    int rc = uv_shutdown(&s->req, rawStream(), [](uv_shutdown_t* req, int status) {
        std::unique_ptr<ShutdownRequest> r(static_cast<ShutdownRequest*>(req->data));
        Stream* self = r->stream;
        if (self->closing() || !r->done) return;
        if (status < 0)
            r->done(uvError(status, "shutdown " + self->peerName_));
        else
            r->done(Status());
    });
    if (rc < 0) return uvError(rc, "shutdown " + peerName_);
    (void)s.release();
    return {};
}

// ---- PendingConnect -----------------------------------------------------------------

struct PendingConnect::Request {
    uv_connect_t req;
    PendingConnect* owner;
};

PendingConnect::PendingConnect(Owned<Stream> stream, std::string target, Callback callback)
    : stream_(std::move(stream)), target_(std::move(target)), callback_(std::move(callback)) {}

PendingConnect::~PendingConnect() {
    // Closing the stream completes the request with UV_ECANCELED; the request then frees
    // itself and, having no owner, calls nobody.
    if (request_) request_->owner = nullptr;
    if (resolve_) cancel(resolve_);
}

uv_connect_t* PendingConnect::request() {
    request_ = new Request{};
    request_->owner = this;
    request_->req.data = request_;
    return &request_->req;
}

void PendingConnect::abandon() {
    delete request_;
    request_ = nullptr;
}

void PendingConnect::onConnect(uv_connect_t* req, int status) {
    std::unique_ptr<Request> r(static_cast<Request*>(req->data));
    PendingConnect* self = r->owner;
    if (!self) return;
    self->request_ = nullptr;
    // Loop::close() closed the stream under its owner: no callbacks after close.
    if (self->stream_->closing()) return;
    // Move everything to the stack first: the callback may destroy `self`.
    Callback callback = std::move(self->callback_);
    Owned<Stream> stream = std::move(self->stream_);
    if (status < 0) {
        std::string what = "connect " + self->target_;
        stream.reset();
        callback(uvError(status, what));
        return;
    }
    stream->setPeerName(self->target_);
    callback(std::move(stream));
}

}  // namespace possync::uv
