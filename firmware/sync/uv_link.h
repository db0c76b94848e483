// The production side of the sync core's I/O interfaces (link.h, clock.h) over platform/uv:
// UvLink adapts a connected uv::TcpStream, UvConnector opens one, UvTime is the loop's clock
// and timers.
#pragma once

#include <memory>
#include <string>

#include "uv/loop.h"
#include "uv/tcp.h"
#include "uv/timer.h"

#include "sync/clock.h"
#include "sync/link.h"

namespace possync::sync {

// What one queued write costs besides its bytes (libuv's request, our WriteRequest, the
// allocations' headers), counted by UvLink::queuedBytes().
inline constexpr size_t kWriteOverheadBytes = 384;

class UvLink final : public Link {
public:
    explicit UvLink(uv::Owned<uv::TcpStream> stream);
    ~UvLink() override;
    UvLink(const UvLink&) = delete;
    UvLink& operator=(const UvLink&) = delete;

    Status start(LinkEvents& events) override;
    Status send(std::vector<uint8_t> frame) override;
    Status sendShared(SharedFrame frame) override;
    Status sendv(std::vector<std::vector<uint8_t>> frames) override;
    size_t queuedBytes() const override;
    void shutdown() override;
    void close() override;
    const std::string& peerName() const override { return peer_; }

private:
    // A write callback: a late failure ends the link (reported once).
    uv::Stream::WriteCallback onWritten();
    void ended(Status status);

    uv::Owned<uv::TcpStream> stream_;
    LinkEvents* events_ = nullptr;
    std::string peer_;
    // Shared with the write callbacks, which can outlive this object (the stream is freed in
    // its close callback): they must not touch a freed UvLink.
    std::shared_ptr<UvLink*> self_;
};

class UvConnector final : public Connector {
public:
    explicit UvConnector(uv::Loop& loop) : loop_(loop) {}
    Result<std::unique_ptr<PendingLink>> connect(const MasterTarget& target, Callback done) override;

private:
    uv::Loop& loop_;
};

class UvTime final : public Clock, public Timers {
public:
    explicit UvTime(uv::Loop& loop) : loop_(loop) {}
    uint64_t nowMs() const override { return loop_.nowMs(); }
    uint64_t wallMs() const override { return uv::Loop::wallMs(); }
    Result<std::unique_ptr<Timer>> makeTimer() override;

private:
    uv::Loop& loop_;
};

}  // namespace possync::sync
