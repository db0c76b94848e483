#include "sync/uv_link.h"

namespace possync::sync {

UvLink::UvLink(uv::Owned<uv::TcpStream> stream)
    : stream_(std::move(stream)), self_(std::make_shared<UvLink*>(this)) {
    peer_ = stream_->peerName();
    (void)stream_->setNoDelay(true);
}

UvLink::~UvLink() {
    *self_ = nullptr;
}

Status UvLink::start(LinkEvents& events) {
    events_ = &events;
    return stream_->startRead(
        [this](Bytes d) {
            if (events_) events_->onData(d);
        },
        [this](const Status& st) { ended(st); });
}

void UvLink::ended(Status status) {
    LinkEvents* e = events_;
    events_ = nullptr;  // reported once
    if (e) e->onClosed(std::move(status));
}

uv::Stream::WriteCallback UvLink::onWritten() {
    return [self = self_](const Status& st) {
        if (!*self) return;
        if (st.ok()) {
            if ((*self)->events_) (*self)->events_->onSent();
            return;
        }
        (*self)->ended(makeError(st.error().code, "write failed: " + st.error().message));
    };
}

Status UvLink::send(std::vector<uint8_t> frame) {
    return stream_->write(std::move(frame), onWritten());
}

Status UvLink::sendShared(SharedFrame frame) {
    return stream_->writeShared(std::move(frame), onWritten());
}

Status UvLink::sendv(std::vector<std::vector<uint8_t>> frames) {
    return stream_->writev(std::move(frames), onWritten());
}

size_t UvLink::queuedBytes() const {
    // Each write holds a request and its buffer's allocation besides its bytes: a peer sent a
    // thousand small Pongs costs more than their 70 bytes each, and the bound is on memory.
    return stream_->writeQueueBytes() + stream_->writesInFlight() * kWriteOverheadBytes;
}

void UvLink::shutdown() {
    if (!stream_->closing()) (void)stream_->shutdown();
}

void UvLink::close() {
    events_ = nullptr;
    stream_->stopRead();
}

namespace {

class UvPendingLink final : public PendingLink {
public:
    std::unique_ptr<uv::PendingConnect> connect;
};

class UvTimer final : public Timer {
public:
    explicit UvTimer(uv::Owned<uv::Timer> timer) : timer_(std::move(timer)) {}
    void start(uint64_t timeoutMs, uint64_t repeatMs, std::function<void()> callback) override {
        timer_->start(timeoutMs, repeatMs, std::move(callback));
    }
    void stop() override { timer_->stop(); }
    bool active() const override { return timer_->active(); }

private:
    uv::Owned<uv::Timer> timer_;
};

}  // namespace

Result<std::unique_ptr<PendingLink>> UvConnector::connect(const MasterTarget& target, Callback done) {
    auto pending = std::make_unique<UvPendingLink>();
    auto c = uv::TcpStream::connect(loop_, target.host, target.port,
                                    [done = std::move(done)](Result<uv::Owned<uv::TcpStream>> r) {
                                        if (!r) return done(r.takeError());
                                        done(std::unique_ptr<Link>(std::make_unique<UvLink>(std::move(*r))));
                                    });
    if (!c) return c.takeError();
    pending->connect = std::move(*c);
    return std::unique_ptr<PendingLink>(std::move(pending));
}

Result<std::unique_ptr<Timer>> UvTime::makeTimer() {
    auto t = uv::Timer::create(loop_);
    if (!t) return t.takeError();
    return std::unique_ptr<Timer>(std::make_unique<UvTimer>(std::move(*t)));
}

}  // namespace possync::sync
