#include "sync/secure_link.h"

#include <cstring>

#include "wire/frame.h"

namespace possync::sync {

SecureLink::SecureLink(std::unique_ptr<Link> inner, trust::Handshake handshake, uint32_t maxFrameBytes)
    : inner_(std::move(inner)),
      handshake_(std::move(handshake)),
      maxRecordBytes_(maxFrameBytes + static_cast<uint32_t>(wire::kFrameHeaderBytes + trust::kSealBytes)) {}

SecureLink::~SecureLink() = default;

Status SecureLink::start(LinkEvents& events) {
    events_ = &events;
    POSSYNC_TRY(inner_->start(*this));
    if (handshake_.role() == trust::Handshake::Role::Initiator) return sendRecordPlain(handshake_.start());
    return {};
}

Status SecureLink::sendRecordPlain(const std::vector<uint8_t>& payload) {
    std::vector<uint8_t> record(kRecordHeaderBytes + payload.size());
    putLe32(record.data(), static_cast<uint32_t>(payload.size()));
    std::memcpy(record.data() + kRecordHeaderBytes, payload.data(), payload.size());
    return inner_->send(std::move(record));
}

void SecureLink::sealRecord(Bytes frame, std::vector<uint8_t>& out) {
    size_t at = out.size();
    out.resize(at + kRecordHeaderBytes);
    putLe32(out.data() + at, static_cast<uint32_t>(frame.size + trust::kSealBytes));
    sealer_->seal(frame, out);
    sealedBytes_ += frame.size;
}

Status SecureLink::send(std::vector<uint8_t> frame) {
    if (closed_) return makeError(Errc::Closed, "link closed");
    if (!ready_) {
        heldBytes_ += frame.size();
        held_.push_back(std::move(frame));
        return {};
    }
    std::vector<uint8_t> record;
    record.reserve(kRecordHeaderBytes + frame.size() + trust::kSealBytes);
    sealRecord(Bytes(frame.data(), frame.size()), record);
    return inner_->send(std::move(record));
}

Status SecureLink::sendShared(SharedFrame frame) {
    // A shared frame (one FULL chunk for many slaves) is sealed per link: each link has its own
    // key, so sharing ends here.
    if (!ready_) return send(*frame);
    if (closed_) return makeError(Errc::Closed, "link closed");
    std::vector<uint8_t> record;
    record.reserve(kRecordHeaderBytes + frame->size() + trust::kSealBytes);
    sealRecord(Bytes(frame->data(), frame->size()), record);
    return inner_->send(std::move(record));
}

Status SecureLink::sendv(std::vector<std::vector<uint8_t>> frames) {
    if (closed_) return makeError(Errc::Closed, "link closed");
    if (!ready_) {
        for (auto& f : frames) {
            heldBytes_ += f.size();
            held_.push_back(std::move(f));
        }
        return {};
    }
    size_t total = 0;
    for (auto& f : frames) total += kRecordHeaderBytes + f.size() + trust::kSealBytes;
    std::vector<uint8_t> records;
    records.reserve(total);
    for (auto& f : frames) sealRecord(Bytes(f.data(), f.size()), records);
    return inner_->send(std::move(records));
}

size_t SecureLink::queuedBytes() const {
    return inner_->queuedBytes() + heldBytes_;
}

void SecureLink::shutdown() {
    if (!ready_) {
        shutdownHeld_ = true;  // after the held frames went out
        return;
    }
    inner_->shutdown();
}

void SecureLink::close() {
    closed_ = true;
    events_ = nullptr;
    inner_->close();
}

void SecureLink::fail(Error error) {
    if (closed_) return;
    closed_ = true;
    inner_->close();
    if (!ready_ && handshakeFailed_) handshakeFailed_(error);
    LinkEvents* e = events_;
    events_ = nullptr;
    if (e) e->onClosed(std::move(error));
}

Status SecureLink::flushHeld() {
    if (held_.empty()) return {};
    auto frames = std::move(held_);
    held_.clear();
    heldBytes_ = 0;
    return sendv(std::move(frames));
}

void SecureLink::onData(Bytes data) {
    if (closed_) return;
    // Whole records straight from `data` when nothing is buffered (the common case for small
    // frames); the rest is buffered until its record is whole.
    if (inboxStart_ == inbox_.size()) {
        inbox_.clear();
        inboxStart_ = 0;
    }
    inbox_.insert(inbox_.end(), data.data, data.data + data.size);
    // Every record this read completes is opened into plain_ and handed on in ONE onData, as the
    // plaintext link hands on one read: the replica applies what one read brought in one
    // transaction (one fsync), not one per record.
    plain_.clear();
    while (!closed_ && inbox_.size() - inboxStart_ >= kRecordHeaderBytes) {
        uint32_t length = getLe32(inbox_.data() + inboxStart_);
        size_t limit = ready_ ? maxRecordBytes_ : trust::kHandshakeMessageMaxBytes;
        if (length > limit) {
            return fail(makeError(Errc::TooLarge, "a record of " + std::to_string(length) + " bytes from " +
                                                      peerName() + " (limit " + std::to_string(limit) +
                                                      (ready_ ? ")" : " before the handshake is done)")));
        }
        if (inbox_.size() - inboxStart_ < kRecordHeaderBytes + length) {
            // Room for the whole record at once: a FULL chunk arrives in many reads, and
            // growing the buffer step by step would copy it again at each doubling.
            inbox_.reserve(inboxStart_ + kRecordHeaderBytes + length);
            break;
        }
        Bytes record(inbox_.data() + inboxStart_ + kRecordHeaderBytes, length);
        inboxStart_ += kRecordHeaderBytes + length;
        Status st = onRecord(record);
        if (!st) return fail(st.takeError());
    }
    if (!closed_ && events_ && !plain_.empty()) events_->onData(Bytes(plain_.data(), plain_.size()));
    if (closed_) return;
    // Keep the buffer from growing by what was consumed.
    if (inboxStart_ > 0 && inboxStart_ == inbox_.size()) {
        inbox_.clear();
        inboxStart_ = 0;
    } else if (inboxStart_ > (64u << 10) && inboxStart_ * 2 > inbox_.size()) {
        inbox_.erase(inbox_.begin(), inbox_.begin() + static_cast<std::ptrdiff_t>(inboxStart_));
        inboxStart_ = 0;
    }
}

Status SecureLink::onRecord(Bytes payload) {
    if (!ready_) {
        auto reply = handshake_.receive(payload);
        if (!reply) return reply.takeError();
        if (!reply->empty()) POSSYNC_TRY(sendRecordPlain(*reply));
        if (handshake_.state() != trust::Handshake::State::Done) return {};
        auto streams = handshake_.takeStreams();
        sealer_ = std::move(streams.send);
        opener_ = std::move(streams.receive);
        ready_ = true;
        POSSYNC_TRY(flushHeld());
        if (shutdownHeld_) inner_->shutdown();
        return {};
    }
    const size_t before = plain_.size();
    POSSYNC_TRY(opener_->openAppend(payload, plain_));
    openedBytes_ += plain_.size() - before;
    return {};
}

void SecureLink::onClosed(Status status) {
    if (closed_) return;
    closed_ = true;
    LinkEvents* e = events_;
    events_ = nullptr;
    if (!e) return;
    if (status.ok() && !ready_) {
        status = makeError(Errc::Closed,
                           "the peer closed the link during the handshake (it may not trust this "
                           "board's key)");
    }
    if (!ready_ && handshakeFailed_) handshakeFailed_(status.error());
    e->onClosed(std::move(status));
}

void SecureLink::onSent() {
    if (events_) events_->onSent();
}

Result<std::unique_ptr<PendingLink>> SecureConnector::connect(const MasterTarget& target, Callback done) {
    return inner_.connect(target, [this, done = std::move(done)](Result<std::unique_ptr<Link>> r) {
        if (!r) return done(r.takeError());
        const uint32_t flags = security_.flagsNow ? security_.flagsNow() : security_.flags;
        auto handshake = trust::Handshake::initiator(security_.identity, security_.check, flags);
        auto link = std::make_unique<SecureLink>(std::move(*r), std::move(handshake), maxFrameBytes_);
        if (security_.failed) {
            std::string peer = link->peerName();
            link->setHandshakeFailed([failed = security_.failed, peer](const Error& e) { failed(peer, e); });
        }
        done(std::unique_ptr<Link>(std::move(link)));
    });
}

}  // namespace possync::sync
