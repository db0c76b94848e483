#include "sync/master_session.h"

#include "log/log.h"

#include "possync_config.h"
#include "sync/master.h"
#include "wire/messages.h"

namespace possync::sync {

POSSYNC_LOG_DECLARE(Sync);

namespace {
// "127.0.0.1:4242" -> "127.0.0.1", "[::1]:4242" -> "[::1]".
std::string hostOf(const std::string& peer) {
    auto colon = peer.rfind(':');
    return colon == std::string::npos ? peer : peer.substr(0, colon);
}
}  // namespace

MasterSession::MasterSession(SessionHost& host, std::unique_ptr<Link> link, uint64_t id)
    : master_(host),
      link_(std::move(link)),
      // Handshake-sized frames until the Hello is accepted (frame.h); onHello raises the limit.
      decoder_(wire::handshakeFrameLimit(host.config().maxFrameBytes)),
      id_(id) {
    peer_ = link_->peerName();
    host_ = hostOf(peer_);
}

MasterSession::~MasterSession() {
    if (pin_) master_.store().unpin(pin_);
}

Status MasterSession::start() {
    auto tick = master_.timers().makeTimer();
    if (!tick) return tick.takeError();
    tick_ = std::move(*tick);
    lastHeardMs_ = lastSentMs_ = acceptedMs_ = master_.clock().nowMs();
    uint64_t hb = master_.config().heartbeatMs;
    tick_->start(hb, hb, [this] { onTick(); });
    return link_->start(*this);
}

void MasterSession::onClosed(Status st) {
    if (closed()) return;
    if (link_->handshaking()) {
        // A failed trust handshake: the master's guard logs those, rate-limited (a stranger
        // hammering the port must not flood the log); counted here like every link error.
        master_.stats().error("handshake");
        quietClose_ = true;
        close(wire::ErrorCode::NONE, st.ok() ? "closed during the handshake" : st.error().message, nullptr);
    } else if (st.ok())
        close(wire::ErrorCode::NONE, "slave closed the link", nullptr);
    else
        close(wire::ErrorCode::NONE, st.error().message, "link");
}

void MasterSession::onSent() {
    // A message going out as Fragments continues as the queue drains (no Ack comes until its
    // last piece is applied).
    if (!closed() && (fragOffset_ || chunkInProgress_)) pump();
}

void MasterSession::step(SessionEvent event) {
    auto next = sessionNext(state_, event);
    if (!next) {
        LOG(Sync, Error) << "session " << id_ << " (" << peer_ << "): illegal transition "
                         << sessionStateName(state_) << " --" << sessionEventName(event) << "-->";
        close(wire::ErrorCode::INTERNAL, "internal state error", "internal");
        return;
    }
    LOG(Sync, Debug) << "session " << id_ << ": " << sessionStateName(state_) << " --"
                     << sessionEventName(event) << "--> " << sessionStateName(*next);
    state_ = *next;
}

void MasterSession::refuse(const std::string& why, const char* errorKind) {
    // The refusal Welcome is queued; closeWith() logs, counts, takes the Refuse edge to Closed
    // and hands the session to the reaper.
    closeWith(SessionEvent::Refuse, wire::ErrorCode::NONE, "refused: " + why, errorKind);
    link_->shutdown();
}

void MasterSession::close(wire::ErrorCode code, const std::string& why, const char* errorKind) {
    closeWith(SessionEvent::LinkError, code, why, errorKind);
}

void MasterSession::closeWith(SessionEvent event, wire::ErrorCode code, const std::string& why,
                              const char* errorKind) {
    if (closed() || closing_) return;
    closing_ = true;
    if (errorKind) {
        master_.stats().error(errorKind);
        LOG(Sync, Warning) << "slave " << (device_.empty() ? peer_ : device_ + " at " + peer_)
                           << ": closing link: " << why;
    } else if (quietClose_) {
        LOG(Sync, Debug) << "slave " << peer_ << ": " << why;
    } else {
        LOG(Sync, Info) << "slave " << (device_.empty() ? peer_ : device_ + " at " + peer_) << ": " << why;
    }
    if (code != wire::ErrorCode::NONE) {
        auto payload = wire::buildError(code, why);
        (void)link_->send(wire::encodeFrame(Bytes(payload.data(), payload.size())));
        link_->shutdown();
    }
    link_->close();
    step(event);
    // Every open state has a LinkError edge to Closed (the table test checks it).
    if (!closed()) step(SessionEvent::LinkError);
    if (tick_) tick_->stop();
    chunksInFlight_.clear();
    snapshot_.reset();
    master_.sessionClosed(this);
}

bool MasterSession::send(std::vector<uint8_t> frame) {
    size_t n = frame.size();
    auto r = link_->send(std::move(frame));
    if (!r.ok()) {
        close(wire::ErrorCode::NONE, "write failed: " + r.error().message, "link");
        return false;
    }
    return sent(1, n);
}

size_t MasterSession::outboundLimit() const {
    if (!helloAccepted_) return wire::kHandshakeMaxFrameBytes;
    return master_.config().sendBufferBytes + peerMaxFrame_ + wire::kFrameHeaderBytes + kControlQueueBytes;
}

bool MasterSession::sent(size_t frames, size_t bytes) {
    master_.stats().framesOut += frames;
    master_.stats().bytesOut += bytes;
    lastSentMs_ = master_.clock().nowMs();
    size_t queued = link_->queuedBytes();
    if (queued > outboundLimit() && !closed()) {
        close(wire::ErrorCode::NONE,
              "the slave does not read: " + std::to_string(queued) + " bytes queued, over the limit of " +
                  std::to_string(outboundLimit()),
              "slow_reader");
    }
    return !closed();
}

bool MasterSession::sendPayload(const std::vector<uint8_t>& payload) {
    return send(wire::encodeFrame(Bytes(payload.data(), payload.size())));
}

bool MasterSession::sendFragments(Bytes payload, uint64_t& offset) {
    size_t piece = wire::fragmentDataBytes(peerMaxFrame_);
    while (offset < payload.size && link_->queuedBytes() < master_.config().sendBufferBytes) {
        size_t n = std::min<uint64_t>(piece, payload.size - offset);
        // Each piece is copied once into its frame; the queue bound above keeps that bounded.
        if (!sendPayload(wire::buildFragment(payload.size, offset, Bytes(payload.data + offset, n))))
            return false;
        offset += n;
    }
    if (offset >= payload.size) offset = 0;
    return true;
}

void MasterSession::onData(Bytes data) {
    if (closed()) return;
    lastHeardMs_ = master_.clock().nowMs();
    master_.stats().bytesIn += data.size;
    uint64_t now = master_.clock().nowMs();
    // A frame under way when this read began keeps its start time; one begun in it starts now.
    auto r = decoder_.feed(data, [this](Bytes payload) {
        framePartial_ = false;
        return onFrame(payload);
    });
    if (r.ok() && !closed()) {
        if (decoder_.buffered() == 0) {
            framePartial_ = false;
        } else if (!framePartial_) {
            framePartial_ = true;
            frameStartMs_ = now;
        }
        checkDeadlines(now);
        return;
    }
    if (!r.ok() && !closed()) {
        wire::ErrorCode code = r.error().code == Errc::TooLarge  ? wire::ErrorCode::TOO_LARGE
                               : r.error().code == Errc::Corrupt ? wire::ErrorCode::VERIFY
                                                                 : wire::ErrorCode::PROTOCOL;
        close(code, r.error().message, code == wire::ErrorCode::TOO_LARGE ? "oversize" : "protocol");
    }
}

Status MasterSession::onFrame(Bytes payload) {
    if (closed()) return makeError(Errc::Closed, "session closed");
    master_.stats().framesIn++;
    if (state_ == SessionState::AwaitHello && ++preHelloFrames_ > kPreHelloFrames)
        return makeError(Errc::Protocol,
                         "more than " + std::to_string(kPreHelloFrames) + " frames before a Hello");
    // A slave's messages hold a few tables: verification work is bounded by that (issue 10).
    auto frame = wire::verifyFromSlave(payload);
    if (!frame) return frame.takeError();
    const wire::Frame* f = *frame;
    switch (f->message_type()) {
        case wire::Message::Hello:
            if (state_ != SessionState::AwaitHello)
                return makeError(Errc::Protocol, "a second Hello on one link");
            return onHello(f->message_as_Hello());
        case wire::Message::Ack:
            if (state_ == SessionState::AwaitHello) return makeError(Errc::Protocol, "Ack before Hello");
            return onAck(f->message_as_Ack());
        case wire::Message::Ping: {
            auto* p = f->message_as_Ping();
            if (!sendPayload(wire::buildPong(p->time_ms(), master_.clock().wallMs(), master_.head())))
                return makeError(Errc::Closed, "write failed");
            return {};
        }
        case wire::Message::Pong: {
            uint64_t now = master_.clock().wallMs();
            uint64_t echo = f->message_as_Pong()->echo_ms();
            rttMs_ = now >= echo ? now - echo : 0;
            return {};
        }
        case wire::Message::Fragment: {
            if (state_ == SessionState::AwaitHello) return makeError(Errc::Protocol, "Fragment before Hello");
            auto whole = reassembler_.feed(f->message_as_Fragment());
            if (!whole) return whole.takeError();
            if (whole->size == 0) return {};  // more pieces to come
            auto inner = wire::verifyFromSlave(*whole);
            if (!inner) return inner.takeError();
            if ((*inner)->message_type() == wire::Message::Fragment)
                return makeError(Errc::Protocol, "a Fragment inside a Fragment");
            return onFrame(*whole);
        }
        case wire::Message::WriteRequest: {
            if (state_ == SessionState::AwaitHello)
                return makeError(Errc::Protocol, "WriteRequest before Hello");
            const wire::WriteRequest* r = f->message_as_WriteRequest();
            if (wire::textOf(r->device_id()) != device_)
                return makeError(Errc::Protocol,
                                 "a WriteRequest of another device on the link of " + device_);
            // An honest slave keeps kRequestWindow requests in flight; more means it does not
            // wait for answers: the master's queue stays bounded.
            if (requestsInFlight_ >= 2 * kRequestWindow)
                return makeError(Errc::Protocol, "more than " + std::to_string(2 * kRequestWindow) +
                                                     " WriteRequests unanswered");
            // The same in bytes (each request may be as large as a reassembled message).
            if (requestBytesInFlight_ && requestBytesInFlight_ + payload.size > 2 * kRequestWindowBytes)
                return makeError(Errc::Protocol, "more than " + std::to_string(2 * kRequestWindowBytes) +
                                                     " bytes of WriteRequests unanswered");
            ++requestsInFlight_;
            requestBytes_.push_back(payload.size);
            requestBytesInFlight_ += payload.size;
            master_.stats().requestsIn++;
            master_.submitRequest(*this, std::vector<uint8_t>(payload.data, payload.data + payload.size));
            return {};
        }
        case wire::Message::Error: {
            auto* e = f->message_as_Error();
            close(wire::ErrorCode::NONE,
                  std::string("slave reported ") + wire::errorCodeName(e->code()) + ": " +
                      std::string(wire::textOf(e->text())),
                  "peer_error");
            return makeError(Errc::Closed, "closed after the slave's Error");
        }
        default:
            return makeError(Errc::Protocol,
                             std::string("unexpected ") + wire::messageTypeName(f) + " from a slave");
    }
}

void MasterSession::requestDone(const store::RequestOutcome& outcome) {
    if (closed()) return;
    if (requestsInFlight_) --requestsInFlight_;
    if (!requestBytes_.empty()) {  // answered in the order submitted
        requestBytesInFlight_ -= requestBytes_.front();
        requestBytes_.pop_front();
    }
    const store::RequestResult& r = outcome.result;
    if (r.rejected) master_.stats().requestsRejected++;
    if (!sendPayload(wire::buildWriteResult(
            r.requestId, r.rejected ? wire::WriteStatus::REJECTED : wire::WriteStatus::COMMITTED, r.seq,
            r.reason)))
        return;
    // The request's log entry (its change, or its rejection) goes out like any other.
    pump();
}

Status MasterSession::onHello(const wire::Hello* hello) {
    device_ = std::string(wire::textOf(hello->device_id()));
    std::string store(wire::textOf(hello->store_id()));
    if (hello->protocol_version() != POSSYNC_PROTOCOL_VERSION) {
        std::string why = "protocol version " + std::to_string(hello->protocol_version()) +
                          " not supported (this master speaks " + std::to_string(POSSYNC_PROTOCOL_VERSION) +
                          ")";
        (void)sendPayload(wire::buildRefusal(master_.config().deviceId, wire::ErrorCode::VERSION, why));
        refuse(why, "version");
        return makeError(Errc::Closed, "refused");
    }
    if (store != master_.config().storeId) {
        std::string why = "this master serves store '" + master_.config().storeId + "', not '" + store + "'";
        (void)sendPayload(wire::buildRefusal(master_.config().deviceId, wire::ErrorCode::WRONG_STORE, why));
        refuse(why, "wrong_store");
        return makeError(Errc::Closed, "refused");
    }
    if (master_.isCandidate(*this)) {
        std::string why = master_.candidateHello(*this);
        (void)sendPayload(wire::buildRefusal(master_.config().deviceId, wire::ErrorCode::NOT_PAIRED, why));
        // Asked again every second while it waits: the daemon logs the request once (pairing.h).
        master_.stats().error("not_paired");
        quietClose_ = true;
        refuse(why, nullptr);
        return makeError(Errc::Closed, "refused");
    }
    if (auto admit = master_.admitHello(*this); !admit.ok()) {
        (void)sendPayload(
            wire::buildRefusal(master_.config().deviceId, wire::ErrorCode::BUSY, admit.error().message));
        refuse(admit.error().message, "link_limit");
        return makeError(Errc::Closed, "refused");
    }
    decoder_.setMaxFrameBytes(static_cast<uint32_t>(master_.config().maxFrameBytes));
    helloAccepted_ = true;  // the Welcome and what follows count against the full bound
    auto view = master_.view();
    if (!view) {
        close(wire::ErrorCode::INTERNAL, "cannot read the change log: " + view.error().message, "store");
        return makeError(Errc::Closed, "store error");
    }
    if (hello->term() > view->term) {
        // The slave follows a master of a higher term: this one was superseded (a slave was
        // promoted while it was away). It serves nothing more (DESIGN.md §10).
        std::string why = "superseded: this master is of term " + std::to_string(view->term) +
                          " but the slave has seen term " + std::to_string(hello->term()) +
                          ": a newer master of the store exists";
        master_.noteHelloTerm(*this, hello->term());
        (void)sendPayload(wire::buildRefusal(master_.config().deviceId, wire::ErrorCode::SUPERSEDED, why));
        refuse(why, "superseded");
        return makeError(Errc::Closed, "refused");
    }
    generation_ = view->generation;
    {
        std::vector<store::HistoryRecord> history = view->history;
        if (history.empty() || history.back().generation != view->generation)
            history.push_back(store::HistoryRecord{view->generation, 0, 0, view->term});
        ancestry_ = store::ancestryOf(history);
    }
    // The slave's limits: our frames never exceed its --max-frame (larger messages go as
    // Fragments), and a message over what it reassembles is never sent.
    peerMaxFrame_ = static_cast<uint32_t>(master_.config().maxFrameBytes);
    if (hello->max_frame()) peerMaxFrame_ = std::min(peerMaxFrame_, hello->max_frame());
    peerMaxMessage_ = hello->max_message() ? std::min<uint64_t>(hello->max_message(), wire::kMaxMessageBytes)
                                           : peerMaxFrame_;
    SlaveView slave;
    slave.resuming = hello->state() == wire::SlaveState::RESUMING;
    auto pos = wire::positionOf(hello->position());
    slave.generation = pos.generation();
    slave.seq = pos.seq();
    SyncDecision d = decideSync(*view, slave);
    if (slave.resuming && !d.related && !hello->accept_new_generation()) {
        // The slave keeps another generation's data until its operator says otherwise
        // (DESIGN.md §8): a snapshot would only be thrown away, on every retry. Say so instead.
        // (An ancestor of ours is not another generation: a promotion continued it, §10.)
        std::string why = "this master has generation " + hex64(view->generation) + ", the slave holds " +
                          hex64(slave.generation) + " up to seq " + std::to_string(slave.seq) +
                          ": waiting for the operator (accept-generation)";
        (void)sendPayload(wire::buildRefusal(master_.config().deviceId, wire::ErrorCode::GENERATION, why));
        refuse(why, "generation");
        return makeError(Errc::Closed, "refused");
    }
    wire::WelcomeFields w;
    w.deviceId = master_.config().deviceId;
    w.generation = view->generation;
    w.headSeq = view->head;
    w.mode = d.kind == SyncKind::Full ? wire::SyncMode::FULL : wire::SyncMode::INCREMENTAL;
    w.heartbeatMs = static_cast<uint32_t>(master_.config().heartbeatMs);
    w.maxFrame = static_cast<uint32_t>(master_.config().maxFrameBytes);
    w.maxMessage = wire::kMaxMessageBytes;
    w.digest = digestToAnnounce();
    w.term = view->term;
    for (const auto& a : ancestry_) w.lineage.emplace_back(a.generation, a.fork);
    if (auto clients = master_.store().clients(); clients) {
        for (const auto& c : *clients)
            if (c.device == device_) w.lastRequest = c.lastRequest;
    }
    if (!sendPayload(wire::buildWelcome(w))) return makeError(Errc::Closed, "write failed");
    LOG(Sync, Info) << "slave " << device_ << " at " << peer_ << ": "
                    << (d.kind == SyncKind::Full ? "FULL" : "INCREMENTAL") << " sync (" << d.why
                    << "; slave at " << hex64(slave.generation) << ":" << slave.seq << ", head " << view->head
                    << ")";
    if (d.discarded)
        LOG(Sync, Warning) << "slave " << device_ << " holds " << d.discarded
                           << " change(s) past the fork of its generation that this master never received: "
                           << "the FULL sync discards them on the slave";
    if (d.kind == SyncKind::Full) {
        step(SessionEvent::HelloFull);
        startFull();
    } else {
        step(SessionEvent::HelloIncremental);
        master_.stats().incrementalSyncs++;
        nextSeq_ = d.fromSeq;
        streamBase_ = ackedSeq_ = slave.seq;
        pin_ = master_.store().pin(slave.seq);
        pumpLog();
    }
    return {};
}

void MasterSession::startFull() {
    master_.stats().fullSyncs++;
    snapshot_ = master_.snapshotForFull();
    chunksInFlight_.clear();
    nextChunk_ = ackedChunks_ = 0;
    fullRecordsSent_ = 0;
    snapshotDone_ = false;
    chunkFragOffset_ = 0;
    chunkInProgress_.reset();
    fragOffset_ = 0;
    if (pin_) master_.store().movePin(pin_, snapshot_->firstSeq());
    pumpFull();
}

Status MasterSession::onAck(const wire::Ack* ack) {
    // Every field is checked against what this link sent: a slave that acknowledges what it
    // never got is broken or hostile, and trusting it would stall the FULL with the log pinned
    // (a wrapped chunk count) or let the log be trimmed under it.
    auto pos = wire::positionOf(ack->position());
    // (Up to a fork the position may name the ancestor or this generation: the same data.)
    bool known = pos.generation() == generation_ ||
                 pos.generation() == store::generationAt(generation_, ancestry_, pos.seq());
    if (!known || pos.seq() >= nextSeq_)
        return makeError(Errc::Protocol, "Ack for position " + hex64(pos.generation()) + ":" +
                                             std::to_string(pos.seq()) + " that was never sent (next seq " +
                                             std::to_string(nextSeq_) + ")");
    if (ack->full()) {
        if (!snapshot_) return makeError(Errc::Protocol, "FULL Ack on a link that had no FULL sync");
        if (ack->chunk() >= chunksEverSent_)
            return makeError(Errc::Protocol, "Ack for FULL chunk " + std::to_string(ack->chunk()) + " of " +
                                                 std::to_string(chunksEverSent_) + " sent");
        // A chunk at or past nextChunk_ was sent by a FULL restarted since: late, ignored.
        if (ack->chunk() < nextChunk_ && ack->chunk() + 1 > ackedChunks_) ackedChunks_ = ack->chunk() + 1;
        while (!chunksInFlight_.empty() && chunksInFlight_.size() > nextChunk_ - ackedChunks_)
            chunksInFlight_.erase(chunksInFlight_.begin());
        // During the replay after a FULL the slave acknowledges received (not yet durable)
        // change models: flow control moves, the log pin does not.
        if (pos.seq() > ackedSeq_) ackedSeq_ = pos.seq();
    } else {
        ackedSeq_ = std::max(ackedSeq_, pos.seq());
        if (pin_) master_.store().movePin(pin_, ackedSeq_);
        while (!sentTimes_.empty() && sentTimes_.front().first <= ackedSeq_) sentTimes_.pop_front();
    }
    pump();
    return {};
}

void MasterSession::onTick() {
    if (closed()) return;
    uint64_t now = master_.clock().nowMs();
    const auto& cfg = master_.config();
    if (now - lastHeardMs_ >= cfg.timeoutMs) {
        close(wire::ErrorCode::TIMEOUT,
              "no frame from the slave for " + std::to_string(now - lastHeardMs_) + " ms", "timeout");
        return;
    }
    checkDeadlines(now);
    if (closed()) return;
    if (state_ != SessionState::AwaitHello && now - lastSentMs_ >= cfg.heartbeatMs / 2)
        if (!sendPayload(wire::buildPing(master_.clock().wallMs(), master_.head(), digestToAnnounce())))
            return;
    // A safety net for a missed wake-up: the log is always read from our own position.
    pump();
}

void MasterSession::checkDeadlines(uint64_t now) {
    const auto& cfg = master_.config();
    if (state_ == SessionState::AwaitHello && now - acceptedMs_ >= cfg.helloTimeoutMs) {
        close(wire::ErrorCode::TIMEOUT, "no Hello in " + std::to_string(now - acceptedMs_) + " ms",
              "hello_timeout");
        return;
    }
    if (!framePartial_) return;
    uint64_t bytes = decoder_.partialFrameBytes();
    uint64_t deadline = cfg.timeoutMs + bytes * 1000 / std::max<uint64_t>(cfg.minFrameRate, 1);
    if (now - frameStartMs_ >= deadline) {
        close(wire::ErrorCode::TIMEOUT,
              "a frame of " + std::to_string(bytes) + " bytes not complete after " +
                  std::to_string(now - frameStartMs_) + " ms (" + std::to_string(decoder_.buffered()) +
                  " received)",
              "frame_timeout");
    }
}

std::optional<wire::DigestAt> MasterSession::digestToAnnounce() {
    // Divergence detection (issue 10): the slave compares this with its own digest once it is
    // at the same position. One read transaction and a get per watched table, only when a
    // Welcome or Ping goes out; never the writer lock.
    auto d = master_.store().watchedDigest();
    if (!d) {
        LOG(Sync, Debug) << "session " << id_ << ": no digest to announce: " << d.error().message;
        return std::nullopt;
    }
    if (generation_ && d->generation != generation_) return std::nullopt;  // the link ends soon
    return wire::DigestAt{d->generation, d->seq, d->digest};
}

SessionInfo MasterSession::info() const {
    SessionInfo i;
    i.id = id_;
    i.address = peer_;
    i.device = device_;
    i.state = sessionStateName(state_);
    i.ackedSeq = ackedSeq_;
    uint64_t head = master_.head();
    i.lagChanges = head > ackedSeq_ ? head - ackedSeq_ : 0;
    uint64_t now = master_.clock().nowMs();
    i.lagMs = (i.lagChanges && !sentTimes_.empty()) ? now - sentTimes_.front().second : 0;
    i.lastHeardMsAgo = now - lastHeardMs_;
    i.rttMs = rttMs_;
    i.mode = snapshot_ ? "full" : "incremental";
    i.problem = problem_;
    if (state_ == SessionState::Full && snapshot_) {
        // Its position is the snapshot's read until the FULL is whole: the lag is not known yet.
        i.lagChanges = i.lagMs = 0;
        i.fullChunks = nextChunk_;
        i.fullRecords = fullRecordsSent_;
        i.fullAnnounced = snapshot_->announcedRecords();
    }
    return i;
}

void SessionHost::submitRequest(MasterSession& session, std::vector<uint8_t> frame) {
    const wire::Frame* f = wire::GetFrame(frame.data());  // verified by the session
    auto r = store().applyRequest(f->message_as_WriteRequest());
    if (!r) {
        session.close(wire::ErrorCode::INTERNAL, "cannot apply your write request: " + r.error().message,
                      "store");
        return;
    }
    session.requestDone(*r);
}

}  // namespace possync::sync
