#include "sync/replica.h"

#include "log/log.h"

#include "possync_config.h"
#include "sync/uv_link.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::sync {

POSSYNC_LOG_DECLARE(Sync);

namespace {
// After a discovery change, how long to let related announcements arrive before choosing.
constexpr uint64_t kDiscoverySettleMs = 150;
// How long status() still shows a divergence after it healed.
constexpr uint64_t kShowHealedMs = 10 * 60 * 1000;
// A full map does not clear before a restart with a larger --map-size: each retry costs the
// master a FULL (or a batch) for nothing, so wait this long at least between attempts.
constexpr uint64_t kMapFullRetryMs = 60000;
// Between two attempts while the master has not paired this board yet (NOT_PAIRED).
constexpr uint64_t kPairingRetryMs = 1000;
}  // namespace

struct Replica::OwnedIo {
    explicit OwnedIo(uv::Loop& loop) : time(loop), connector(loop) {}
    UvTime time;
    UvConnector connector;
    std::unique_ptr<SecureConnector> secure;  // over `connector` when links are sealed
};

Result<std::unique_ptr<Replica>> Replica::create(uv::Loop& loop, store::Store& store, Locator& locator,
                                                 ReplicaConfig config) {
    auto io = std::make_unique<OwnedIo>(loop);
    if (config.security)
        io->secure = std::make_unique<SecureConnector>(io->connector, *config.security,
                                                       static_cast<uint32_t>(config.maxFrameBytes));
    Connector& connector = io->secure ? static_cast<Connector&>(*io->secure) : io->connector;
    auto r = create(io->time, io->time, connector, store, locator, std::move(config));
    if (!r) return r;
    (*r)->ownedIo_ = std::move(io);
    return r;
}

Result<std::unique_ptr<Replica>> Replica::create(Clock& clock, Timers& timers, Connector& connector,
                                                 store::Store& store, Locator& locator,
                                                 ReplicaConfig config) {
    std::unique_ptr<Replica> r(new Replica(clock, timers, connector, store, locator, std::move(config)));
    for (auto* t : {&r->retry_, &r->tick_, &r->reaper_}) {
        auto timer = r->timers_.makeTimer();
        if (!timer) return timer.takeError();
        *t = std::move(*timer);
    }
    auto m = store.meta();
    if (!m) return m.takeError();
    r->generation_ = m->generation;
    r->position_ = m->seq;
    r->synced_ = m->synced;
    r->highestTerm_ = std::max(m->term, m->highestTermSeen);
    return r;
}

Replica::Replica(Clock& clock, Timers& timers, Connector& connector, store::Store& store, Locator& locator,
                 ReplicaConfig config)
    : clock_(clock),
      timers_(timers),
      connector_(connector),
      store_(store),
      locator_(locator),
      config_(std::move(config)),
      backoff_(config_.backoffMinMs, config_.backoffMaxMs, store::randomU64()) {}

Replica::~Replica() = default;

void Replica::step(ReplicaEvent event) {
    auto next = replicaNext(state_, event);
    if (!next) {
        // An event the state machine does not expect here: a bug or a confused peer. Never
        // continue in an unknown state: drop the link and start over, through the table's own
        // failure edge of this state (Locating, Connecting and every linked state have one).
        LOG(Sync, Error) << "replica: illegal transition " << replicaStateName(state_) << " --"
                         << replicaEventName(event) << "-->";
        stats_.error("internal");
        ReplicaEvent failure = state_ == ReplicaState::Locating     ? ReplicaEvent::LocateFailed
                               : state_ == ReplicaState::Connecting ? ReplicaEvent::ConnectFailed
                                                                    : ReplicaEvent::LinkLost;
        auto recover = replicaNext(state_, failure);
        if (!recover) return;  // Backoff, WaitingOperator, Stopped: nothing to drop
        dropLink();
        state_ = *recover;
        scheduleRetry();
        return;
    }
    LOG(Sync, Debug) << "replica: " << replicaStateName(state_) << " --" << replicaEventName(event) << "--> "
                     << replicaStateName(*next);
    state_ = *next;
}

void Replica::start() {
    locator_.setOnChange([this] {
        // A master appeared, moved or left. Waiting out the backoff (or a connect to an address
        // that may be gone) would only delay us: look again soon, after a short settle time so
        // that a burst of announcements (an avahi-daemon restart re-announces every board)
        // is complete before we choose; the backoff starts over.
        if (state_ == ReplicaState::Connecting) {
            connecting_.reset();
            step(ReplicaEvent::ConnectFailed);
        }
        // A master of a higher term (a slave promoted while this link's master lived on, e.g.
        // behind a partition; DESIGN.md §10) supersedes it: the link closes and the backoff
        // below goes to the new one. A tie is decided by the locator, the same on every board.
        if (link_) {
            auto next = locator_.choose();
            if (next && next->term > target_.term) {
                linkLost("a master of term " + std::to_string(next->term) + " (" + next->device +
                             ") supersedes " +
                             (target_.device.empty() ? std::string("this link's master") : target_.device) +
                             " of term " + std::to_string(target_.term),
                         wire::ErrorCode::NONE, nullptr);
                backoff_.reset();
            }
        }
        if (state_ == ReplicaState::Backoff || state_ == ReplicaState::WaitingOperator) {
            retry_->stop();
            backoff_.reset();
            retry_->start(kDiscoverySettleMs, 0, [this] {
                if (state_ != ReplicaState::Backoff && state_ != ReplicaState::WaitingOperator) return;
                step(ReplicaEvent::RetryDue);
                locate();
            });
        }
    });
    LOG(Sync, Info) << "slave of store " << config_.storeId << " starting at "
                    << (synced_ ? hex64(generation_) + ":" + std::to_string(position_)
                                : std::string("no data"))
                    << ", master via " << locator_.describe();
    step(ReplicaEvent::RetryDue);
    locate();
}

void Replica::stop() {
    if (state_ == ReplicaState::Stopped) return;
    step(ReplicaEvent::Stop);
    dropLink();
    retry_->stop();
    tick_->stop();
}

void Replica::scheduleRetry() {
    uint64_t delay = backoff_.next();
    if (storeFault_ == StoreFault::MapFull) delay = std::max(delay, kMapFullRetryMs);
    // Waiting to be paired: ask again soon at a steady pace, so that the operator's `pair accept`
    // takes effect within a second without the backoff having grown meanwhile.
    if (!pairing_.empty()) delay = kPairingRetryMs;
    LOG(Sync, Debug) << "replica: next attempt in " << delay << " ms";
    retry_->start(delay, 0, [this] {
        if (state_ != ReplicaState::Backoff && state_ != ReplicaState::WaitingOperator) return;
        step(ReplicaEvent::RetryDue);
        locate();
    });
}

void Replica::locate() {
    auto target = locator_.choose();
    if (!target) {
        if (waitingReason_ != target.error().message)
            LOG(Sync, Warning) << "no master to connect to: " << target.error().message;
        waitingReason_ = target.error().message;
        step(ReplicaEvent::LocateFailed);
        scheduleRetry();
        return;
    }
    target_ = *target;
    step(ReplicaEvent::Located);
    auto pending = connector_.connect(target_, [this](Result<std::unique_ptr<Link>> r) {
        connecting_.reset();
        if (!r) {
            LOG(Sync, Info) << "connect to master: " << r.error().message;
            waitingReason_ = r.error().message;
            stats_.error("connect");
            step(ReplicaEvent::ConnectFailed);
            scheduleRetry();
            return;
        }
        onConnected(std::move(*r));
    });
    if (!pending) {
        waitingReason_ = pending.error().message;
        step(ReplicaEvent::ConnectFailed);
        scheduleRetry();
        return;
    }
    connecting_ = std::move(*pending);
    // A board that vanished without a goodbye never answers a SYN: without a deadline the
    // kernel would keep trying for minutes while discovery already knows the new address.
    retry_->start(config_.timeoutMs, 0, [this] {
        if (state_ != ReplicaState::Connecting) return;
        LOG(Sync, Info) << "connect to master at " << target_.host << ":" << target_.port << ": no answer in "
                        << config_.timeoutMs << " ms";
        connecting_.reset();
        waitingReason_ = "no answer from " + target_.host + ":" + std::to_string(target_.port);
        stats_.error("connect");
        step(ReplicaEvent::ConnectFailed);
        scheduleRetry();
    });
}

void Replica::onConnected(std::unique_ptr<Link> link) {
    retry_->stop();  // the connect deadline
    link_ = std::move(link);
    // Until the master's Welcome is accepted, only handshake-sized frames (frame.h).
    decoder_ = std::make_unique<wire::FrameDecoder>(wire::handshakeFrameLimit(config_.maxFrameBytes));
    stats_.connects++;
    if (everConnected_) stats_.reconnects++;
    everConnected_ = true;
    step(ReplicaEvent::Connected);
    auto r = link_->start(*this);
    if (!r) {
        linkLost("cannot read: " + r.error().message, wire::ErrorCode::NONE, "link");
        return;
    }
    wire::HelloFields h;
    h.protocolVersion = POSSYNC_PROTOCOL_VERSION;
    h.storeId = config_.storeId;
    h.deviceId = config_.deviceId;
    bool resuming = synced_ && !forceStarting_;
    h.state = resuming ? wire::SlaveState::RESUMING : wire::SlaveState::STARTING;
    h.position = wire::Position(generation_, position_);
    h.acceptNewGeneration = config_.acceptNewGeneration || acceptOnce_ || forceStarting_;
    h.term = highestTerm_;
    h.maxFrame = static_cast<uint32_t>(config_.maxFrameBytes);
    h.maxMessage = reassembler_.maxMessageBytes();
    lastHeardMs_ = helloSentMs_ = clock_.nowMs();
    framePartial_ = false;
    preWelcomeFrames_ = 0;
    if (!send(wire::buildHello(h))) return;
    tick_->start(config_.heartbeatMs, config_.heartbeatMs, [this] { onTick(); });
    LOG(Sync, Info) << "connected to master at " << link_->peerName() << " (" << target_.source << "), "
                    << (resuming ? "resuming from " + std::to_string(position_) : std::string("starting"));
}

bool Replica::send(const std::vector<uint8_t>& payload) {
    if (!link_) return false;
    std::vector<uint8_t> frame = wire::encodeFrame(Bytes(payload.data(), payload.size()));
    size_t n = frame.size();
    auto r = link_->send(std::move(frame));
    if (!r) {
        linkLost("write failed: " + r.error().message, wire::ErrorCode::NONE, "link");
        return false;
    }
    stats_.framesOut++;
    stats_.bytesOut += n;
    lastSentMs_ = clock_.nowMs();
    // Every queued byte counts, Pongs included: a master that sends Pings and never reads the
    // Pongs would otherwise grow this slave without limit.
    if (size_t queued = link_->queuedBytes(); queued > config_.sendBufferBytes) {
        linkLost("the master does not read: " + std::to_string(queued) + " bytes queued, over the limit of " +
                     std::to_string(config_.sendBufferBytes),
                 wire::ErrorCode::NONE, "slow_reader");
        return false;
    }
    return true;
}

void Replica::dropLink() {
    connecting_.reset();  // a pending connect may be cancelled inside its own callback
    // The link and its decoder may be in use up the stack (we are often inside their onData):
    // silence the link now, free both on a later loop turn.
    if (link_) {
        link_->close();
        retiredLinks_.push_back(std::move(link_));
    }
    if (decoder_) retiredDecoders_.push_back(std::move(decoder_));
    reassembler_.reset();  // forgets a partial message; its buffer is given back by reap()
    if ((!retiredLinks_.empty() || !retiredDecoders_.empty()) && reaper_)
        reaper_->start(0, 0, [this] { reap(); });
    if (tick_) tick_->stop();
    full_.reset();   // aborts: readers keep the previous data set and position
    batch_.reset();  // aborts: the master resends from our durable position
    nextChunk_ = 0;
    lastChunkSeen_ = false;
    // Requests unanswered stay in the outbox: the next link sends them again from the oldest
    // (the master answers one it applied already with its stored outcome).
    forwardedUpTo_ = 0;
    inFlight_.clear();
    inFlightBytes_ = 0;
    fragmenting_.clear();
    fragOffset_ = 0;
}

void Replica::reap() {
    retiredLinks_.clear();
    retiredDecoders_.clear();
    reassembler_.release();
}

void Replica::onClosed(Status st) {
    linkLost(st.ok() ? "master closed the link" : st.error().message, wire::ErrorCode::NONE,
             st.ok() ? nullptr : "link");
}

void Replica::linkLost(const std::string& why, wire::ErrorCode code, const char* errorKind) {
    if (state_ == ReplicaState::Stopped || state_ == ReplicaState::Backoff ||
        state_ == ReplicaState::WaitingOperator || state_ == ReplicaState::Locating)
        return;
    if (errorKind) stats_.error(errorKind);
    if (code != wire::ErrorCode::NONE && link_) {
        auto payload = wire::buildError(code, why);
        (void)link_->send(wire::encodeFrame(Bytes(payload.data(), payload.size())));
    }
    if (errorKind)
        LOG(Sync, Warning) << "link to master lost: " << why;
    else
        LOG(Sync, Info) << "link to master closed: " << why;
    bool wasConnecting = state_ == ReplicaState::Connecting;
    dropLink();
    step(wasConnecting ? ReplicaEvent::ConnectFailed : ReplicaEvent::LinkLost);
    scheduleRetry();
}

void Replica::onData(Bytes data) {
    if (!link_ || !decoder_) return;
    lastHeardMs_ = clock_.nowMs();
    stats_.bytesIn += data.size;
    // A frame handler may drop the link: the decoder is then retired, not freed, so this call
    // returns normally (deferred deletion: no "alive" token in the decoder).
    wire::FrameDecoder* decoder = decoder_.get();
    uint64_t now = lastHeardMs_;
    auto r = decoder->feed(data, [this](Bytes payload) {
        framePartial_ = false;
        return onFrame(payload);
    });
    if (!link_) return;  // the link was dropped inside a frame handler
    if (r) {
        if (decoder->buffered() == 0) {
            framePartial_ = false;
        } else if (!framePartial_) {
            framePartial_ = true;
            frameStartMs_ = now;
        }
    }
    if (!r) {
        if (storeFailed(r.error())) return;
        wire::ErrorCode code = r.error().code == Errc::TooLarge   ? wire::ErrorCode::TOO_LARGE
                               : r.error().code == Errc::Corrupt  ? wire::ErrorCode::VERIFY
                               : r.error().code == Errc::Protocol ? wire::ErrorCode::PROTOCOL
                                                                  : wire::ErrorCode::INTERNAL;
        const char* kind = r.error().code == Errc::Corrupt    ? "verify"
                           : r.error().code == Errc::TooLarge ? "oversize"
                                                              : "protocol";
        linkLost(r.error().message, code, kind);
        return;
    }
    auto c = commitBatch();
    if (!c) {
        if (!storeFailed(c.error()))
            linkLost("cannot apply: " + c.error().message, wire::ErrorCode::INTERNAL, "store");
        return;
    }
    checkDigest();
    if (link_) checkDeadlines(now);
}

void Replica::checkDeadlines(uint64_t now) {
    if (state_ == ReplicaState::AwaitWelcome && now - helloSentMs_ >= config_.helloTimeoutMs) {
        linkLost("no Welcome in " + std::to_string(now - helloSentMs_) + " ms", wire::ErrorCode::TIMEOUT,
                 "hello_timeout");
        return;
    }
    if (!framePartial_ || !decoder_) return;
    uint64_t bytes = decoder_->partialFrameBytes();
    uint64_t deadline = config_.timeoutMs + bytes * 1000 / std::max<uint64_t>(config_.minFrameRate, 1);
    if (now - frameStartMs_ >= deadline)
        linkLost("a frame of " + std::to_string(bytes) + " bytes not complete after " +
                     std::to_string(now - frameStartMs_) + " ms (" + std::to_string(decoder_->buffered()) +
                     " received)",
                 wire::ErrorCode::TIMEOUT, "frame_timeout");
}

bool Replica::storeFailed(const Error& e) {
    // Only our own disk: an I/O error (write, fsync, msync failed: ENOSPC, EIO, ...) or a full
    // LMDB map. The apply transaction was aborted whole (LMDB commits all or nothing), so
    // readers keep the last committed data and position_ is still the durable one; the master
    // resends from it on the next link, INCREMENTAL where its log covers it.
    if (e.code != Errc::Io && e.code != Errc::MapFull) return false;
    const bool mapFull = e.code == Errc::MapFull;
    storeFault_ = mapFull ? StoreFault::MapFull : StoreFault::Disk;
    waitingReason_ =
        mapFull ? "map full: " + e.message + "; position " + std::to_string(position_) + " kept"
                : "disk error: " + e.message + "; position " + std::to_string(position_) + " kept, retrying";
    LOG(Sync, Error) << "cannot store the master's changes: " << waitingReason_;
    linkLost("cannot apply: " + e.message, wire::ErrorCode::INTERNAL, mapFull ? "map_full" : "disk");
    // A failed meta-page write (fsync/msync of the meta page) leaves LMDB's environment
    // marked fatal: every later transaction of this process fails with MDB_PANIC, whatever the
    // disk does now. lmdb::fromMdb keeps mdb_strerror's text, which names it.
    if (e.message.find("MDB_PANIC") != std::string::npos && config_.onStoreUnusable)
        config_.onStoreUnusable("LMDB environment unusable after a failed write: " + e.message);
    return true;
}

void Replica::storeRecovered() {
    if (storeFault_ == StoreFault::None) return;
    LOG(Sync, Warning) << "disk writes work again (after: " << waitingReason_ << ")";
    storeFault_ = StoreFault::None;
    waitingReason_.clear();
    backoff_.reset();
}

Status Replica::onFrame(Bytes payload) {
    // The rest of a read after the link was dropped inside a handler is not ours any more.
    if (!link_) return makeError(Errc::Closed, "link dropped");
    stats_.framesIn++;
    // Before the Welcome the peer is unknown: only a few frames are verified (each at most
    // 64 KiB); a genuine master sends its Welcome first.
    if (state_ == ReplicaState::AwaitWelcome && ++preWelcomeFrames_ > kPreHelloFrames)
        return makeError(Errc::Protocol,
                         "more than " + std::to_string(kPreHelloFrames) + " frames before a Welcome");
    auto frame = wire::verifyFrame(payload);
    if (!frame) return frame.takeError();
    const wire::Frame* f = *frame;
    switch (f->message_type()) {
        case wire::Message::Welcome:
            if (state_ != ReplicaState::AwaitWelcome) return makeError(Errc::Protocol, "unexpected Welcome");
            POSSYNC_TRY(onWelcome(f->message_as_Welcome()));
            noteMasterDigest(wire::digestOf(f->message_as_Welcome()));
            decoder_->setMaxFrameBytes(static_cast<uint32_t>(config_.maxFrameBytes));
            return {};
        case wire::Message::ChangeModel:
            currentFrame_ = payload;  // kept in this board's log as received (ApplyTxn::apply)
            return onChangeModel(f->message_as_ChangeModel());
        case wire::Message::Ping: {
            auto* p = f->message_as_Ping();
            masterHead_ = std::max(masterHead_, p->head_seq());
            // When it arrived, on our own monotonic clock: the lag shown never subtracts the
            // master's wall clock from ours (store boards often have no NTP and disagree by hours).
            masterPingAtMs_ = clock_.nowMs();
            noteMasterDigest(wire::digestOf(p));
            if (!send(wire::buildPong(p->time_ms(), clock_.wallMs(), position_)))
                return makeError(Errc::Closed, "link lost");
            return {};
        }
        case wire::Message::Pong: {
            uint64_t now = clock_.wallMs(), echo = f->message_as_Pong()->echo_ms();
            rttMs_ = now >= echo ? now - echo : 0;
            masterHead_ = std::max(masterHead_, f->message_as_Pong()->head_seq());
            return {};
        }
        case wire::Message::Fragment: {
            // A message over our --max-frame, in pieces: joined, then handled as one frame.
            if (state_ == ReplicaState::AwaitWelcome)
                return makeError(Errc::Protocol, "Fragment before Welcome");
            auto whole = reassembler_.feed(f->message_as_Fragment());
            if (!whole) return whole.takeError();
            if (whole->size == 0) return {};  // more pieces to come
            auto inner = wire::verifyFrame(*whole);
            if (!inner) return inner.takeError();
            if ((*inner)->message_type() == wire::Message::Fragment)
                return makeError(Errc::Protocol, "a Fragment inside a Fragment");
            return onFrame(*whole);
        }
        case wire::Message::WriteResult: return onWriteResult(f->message_as_WriteResult());
        case wire::Message::Error: {
            auto* e = f->message_as_Error();
            std::string why = std::string("master reported ") + wire::errorCodeName(e->code()) + ": " +
                              std::string(wire::textOf(e->text()));
            if (e->code() == wire::ErrorCode::WRONG_STORE || e->code() == wire::ErrorCode::VERSION)
                waitingReason_ = why;
            if (e->code() == wire::ErrorCode::NOT_PAIRED) pairing_ = std::string(wire::textOf(e->text()));
            linkLost(why, wire::ErrorCode::NONE,
                     e->code() == wire::ErrorCode::SHUTDOWN ? nullptr : "peer_error");
            return makeError(Errc::Closed, "link closed");
        }
        default:
            return makeError(Errc::Protocol,
                             std::string("unexpected ") + wire::messageTypeName(f) + " from the master");
    }
}

void Replica::onTick() {
    if (!link_) return;
    uint64_t now = clock_.nowMs();
    if (now - lastHeardMs_ >= config_.timeoutMs) {
        linkLost("no frame from the master for " + std::to_string(now - lastHeardMs_) + " ms",
                 wire::ErrorCode::TIMEOUT, "timeout");
        return;
    }
    checkDeadlines(now);
    if (!link_) return;
    if (now - lastSentMs_ >= config_.heartbeatMs / 2) (void)send(wire::buildPing(clock_.wallMs(), position_));
}

ReplicaStatus Replica::status() const {
    ReplicaStatus s;
    s.state = replicaStateName(state_);
    s.master = target_.host.empty() ? "" : target_.host + ":" + std::to_string(target_.port);
    s.masterDevice = masterDevice_;
    s.foundVia = target_.source.empty() ? locator_.describe() : target_.source;
    s.generation = generation_;
    s.position = position_;
    s.synced = synced_;
    s.masterHead = masterHead_;
    s.lagChanges = masterHead_ > position_ ? masterHead_ - position_ : 0;
    // The age of the master's last Ping while we are behind it: since it arrived, plus half a
    // round trip for its way here (NTP's estimate: the two clocks' offset cancels out).
    s.lagMs = (s.lagChanges && masterPingAtMs_) ? clock_.nowMs() - masterPingAtMs_ + rttMs_ / 2 : 0;
    s.rttMs = rttMs_;
    s.lastHeardMsAgo = link_ ? clock_.nowMs() - lastHeardMs_ : 0;
    s.fullProgressChunks = full_ ? nextChunk_ : 0;
    if (full_) {
        s.fullRecords = fullRecords_;
        s.fullAnnounced = fullAnnounced_;
    }
    s.waitingReason = waitingReason_;
    s.pairing = pairing_;
    s.masterTerm = masterTerm_;
    s.highestTerm = highestTerm_;
    s.discarded = discarded_;
    s.diverged = diverged_;
    if (s.diverged.empty() && !healed_.empty() && clock_.nowMs() - healedAtMs_ < kShowHealedMs)
        s.diverged = healed_;
    return s;
}

}  // namespace possync::sync
