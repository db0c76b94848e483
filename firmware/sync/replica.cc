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
// Records a FULL may carry beyond twice what chunk 0 announced (writes during the FULL).
constexpr uint64_t kFullRecordSlack = 1024;
// How long status() still shows a divergence after it healed.
constexpr uint64_t kShowHealedMs = 10 * 60 * 1000;
// A full map does not clear before a restart with a larger --map-size: each retry costs the
// master a FULL (or a batch) for nothing, so wait this long at least between attempts.
constexpr uint64_t kMapFullRetryMs = 60000;
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
            linkLost(why, wire::ErrorCode::NONE,
                     e->code() == wire::ErrorCode::SHUTDOWN ? nullptr : "peer_error");
            return makeError(Errc::Closed, "link closed");
        }
        default:
            return makeError(Errc::Protocol,
                             std::string("unexpected ") + wire::messageTypeName(f) + " from the master");
    }
}

Status Replica::onWelcome(const wire::Welcome* w) {
    masterDevice_ = std::string(wire::textOf(w->device_id()));
    if (w->refused()) {
        if (w->code() == wire::ErrorCode::GENERATION) {
            // The master saw our other generation and that we may not take its data: the same
            // wait for the operator as when we see it ourselves (below), without a snapshot.
            waitingReason_ = "master data replaced: " + std::string(wire::textOf(w->reason())) +
                             "; keeping this slave's data until the operator runs accept-generation";
            LOG(Sync, Warning) << waitingReason_;
            stats_.error("generation");
            dropLink();
            step(ReplicaEvent::GenerationMismatch);
            scheduleRetry();
            return makeError(Errc::Closed, "generation mismatch");
        }
        waitingReason_ = "master refused: " + std::string(wire::textOf(w->reason()));
        LOG(Sync, Warning) << waitingReason_;
        stats_.error("refused");
        dropLink();
        step(ReplicaEvent::Refused);
        scheduleRetry();
        return makeError(Errc::Closed, "refused");
    }
    if (w->term() < highestTerm_) {
        // A master superseded by a promotion (DESIGN.md §10): following it could mix changes of
        // two masters. Its Hello check refuses us too; this covers an older one that did not.
        waitingReason_ = "master " + masterDevice_ + " is of term " + std::to_string(w->term()) +
                         ", this board has seen term " + std::to_string(highestTerm_) +
                         ": not following a superseded master";
        LOG(Sync, Warning) << waitingReason_;
        stats_.error("superseded");
        (void)send(wire::buildError(wire::ErrorCode::SUPERSEDED, waitingReason_));
        dropLink();
        step(ReplicaEvent::Refused);
        scheduleRetry();
        return makeError(Errc::Closed, "superseded");
    }
    linkGeneration_ = w->generation();
    masterHead_ = w->head_seq();
    masterTerm_ = w->term();
    ancestry_.clear();
    if (w->lineage())
        for (const wire::Position* p : *w->lineage()) ancestry_.push_back({p->generation(), p->seq()});
    bool allowed = config_.acceptNewGeneration || acceptOnce_ || forceStarting_;
    std::string problem;
    // Our generation is the master's, or one it continued (a promotion): up to where.
    auto shared = store::sharedWith(linkGeneration_, ancestry_, generation_);
    uint64_t discarded = 0;
    if (synced_ && !shared)
        problem = "master data replaced: the master has generation " + hex64(w->generation()) +
                  ", this slave holds generation " + hex64(generation_) + " up to seq " +
                  std::to_string(position_);
    else if (synced_ && *shared != UINT64_MAX && position_ > *shared)
        discarded = position_ - *shared;  // went past the fork: a FULL, no operator needed
    else if (synced_ && w->head_seq() < position_)
        problem = "the master (head " + std::to_string(w->head_seq()) + ") is behind this slave (seq " +
                  std::to_string(position_) + "): was its data restored?";
    if (!problem.empty() && !allowed) {
        waitingReason_ = problem + "; keeping this slave's data until the operator runs accept-generation";
        LOG(Sync, Warning) << waitingReason_;
        stats_.error("generation");
        auto payload = wire::buildError(wire::ErrorCode::GENERATION, problem);
        (void)send(payload);
        dropLink();
        step(ReplicaEvent::GenerationMismatch);
        scheduleRetry();
        return makeError(Errc::Closed, "generation mismatch");
    }
    if (discarded && w->mode() != wire::SyncMode::FULL)
        return makeError(Errc::Protocol, "INCREMENTAL offered to a slave " + std::to_string(discarded) +
                                             " changes past the fork of its generation");
    if (discarded) {
        discarded_ = std::to_string(discarded) + " change(s) this board held past seq " +
                     std::to_string(*shared) + " of generation " + hex64(generation_) +
                     " (the fork of the new master " + masterDevice_ + ", term " +
                     std::to_string(masterTerm_) + ") were never received by it: the FULL sync discards them";
        LOG(Sync, Warning) << discarded_;
        stats_.error("discarded_past_fork");
    }
    if (masterTerm_ > highestTerm_) {
        highestTerm_ = masterTerm_;
        if (auto t = store_.noteTerm(masterTerm_); !t)
            LOG(Sync, Warning) << "cannot record term " << masterTerm_ << ": " << t.error().message;
    }
    lineagePending_ = true;
    if (storeFault_ == StoreFault::None) {  // else both stay until a commit works again
        waitingReason_.clear();
        backoff_.reset();
    }
    if (w->mode() == wire::SyncMode::FULL) {
        LOG(Sync, Info) << "master " << masterDevice_ << " sends a FULL sync (generation "
                        << hex64(linkGeneration_) << ", head " << masterHead_ << ")";
        nextChunk_ = 0;
        step(ReplicaEvent::WelcomeFull);
    } else {
        LOG(Sync, Info) << "master " << masterDevice_ << " resumes INCREMENTAL after " << position_
                        << " (head " << masterHead_ << ")";
        // (A failure of our disk here is handled as any apply's: onData's storeFailed.)
        if (synced_ && generation_ != linkGeneration_) POSSYNC_TRY(adoptGeneration());
        stats_.incrementalSyncs++;
        step(ReplicaEvent::WelcomeIncremental);
    }
    masterMaxFrame_ = w->max_frame() ? w->max_frame() : wire::kDefaultMaxFrameBytes;
    if (w->last_request()) POSSYNC_TRY(store_.raiseNextRequest(w->last_request()));
    if (state_ == ReplicaState::Streaming) forward();
    return {};
}

Status Replica::onChangeModel(const wire::ChangeModel* cm) {
    // A FULL chunk is of the master's generation; a log entry of the generation that wrote it
    // (an ancestor's up to its fork, DESIGN.md §10).
    uint64_t expected = cm->flag() == wire::SyncMode::FULL ? linkGeneration_ : generationAt(cm->first_seq());
    if (cm->generation() != expected ||
        (cm->flag() != wire::SyncMode::FULL && generationAt(cm->last_seq()) != expected))
        return makeError(Errc::Corrupt, "change model of generation " + hex64(cm->generation()) + " at seq " +
                                            std::to_string(cm->first_seq()) + " on a link of generation " +
                                            hex64(linkGeneration_) + " (expected " + hex64(expected) + ")");
    // One transaction, or one chunk read at one seq: never a range the model does not carry.
    POSSYNC_TRY(wire::checkSeqFields(cm));
    stats_.changesIn += cm->changes() ? cm->changes()->size() : 0;
    if (cm->flag() == wire::SyncMode::FULL) return onFullChunk(cm);
    return onIncremental(cm);
}

Status Replica::onFullChunk(const wire::ChangeModel* cm) {
    bool fullOpen =
        state_ == ReplicaState::FullReplay || (state_ == ReplicaState::ReceivingFull && nextChunk_ > 0);
    if (cm->chunk() == 0 && (state_ == ReplicaState::Streaming || fullOpen)) {
        // The master starts over with FULL (watched tables changed, or we fell behind its log),
        // possibly while our previous FULL is still replaying: that one is abandoned (its
        // transaction aborts, readers keep the old data set) and the new one begins.
        if (state_ == ReplicaState::Streaming) POSSYNC_TRY(commitBatch());
        if (fullOpen) LOG(Sync, Info) << "master restarts the FULL sync; the one in progress is dropped";
        full_.reset();
        nextChunk_ = 0;
        lastChunkSeen_ = false;
        step(ReplicaEvent::FullRestart);
    }
    if (state_ != ReplicaState::ReceivingFull)
        return makeError(Errc::Protocol, "FULL chunk outside a FULL sync");
    if (cm->chunk() != nextChunk_)
        return makeError(Errc::Protocol, "FULL chunk " + std::to_string(cm->chunk()) +
                                             " out of order (expected " + std::to_string(nextChunk_) + ")");
    if (cm->chunk() == 0) {
        auto txn = store_.beginFullApply();
        if (!txn) return txn.takeError();
        full_.emplace(std::move(*txn));
        std::vector<std::string> tables;
        if (cm->tables())
            for (auto* t : *cm->tables()) tables.emplace_back(wire::textOf(t));
        POSSYNC_TRY(full_->beginFull(tables));
        fullFirstSeq_ = fullTargetSeq_ = fullAppliedSeq_ = cm->snapshot_seq();
        fullRecords_ = 0;
        // Data may grow while the FULL runs: twice the announced size and 1024 records more.
        // (An older master announces nothing: no limit.)
        auto announced = cm->snapshot_records();
        fullRecordLimit_ = announced ? *announced * 2 + kFullRecordSlack : 0;
    }
    fullRecords_ += cm->changes() ? cm->changes()->size() : 0;
    if (fullRecordLimit_ && fullRecords_ > fullRecordLimit_)
        return makeError(Errc::TooLarge, "FULL sync larger than announced: " + std::to_string(fullRecords_) +
                                             " records by chunk " + std::to_string(cm->chunk()) +
                                             ", over the limit of " + std::to_string(fullRecordLimit_) +
                                             " (2x the announced size + " + std::to_string(kFullRecordSlack) +
                                             ")");
    // Chunks after the first are read at chunk 0's seq or later: the replay that follows the
    // snapshot starts after chunk 0's seq, so an older chunk would lose changes.
    if (cm->snapshot_seq() < fullFirstSeq_)
        return makeError(Errc::Corrupt, "FULL chunk " + std::to_string(cm->chunk()) + " read at seq " +
                                            std::to_string(cm->snapshot_seq()) + ", before chunk 0's seq " +
                                            std::to_string(fullFirstSeq_));
    POSSYNC_TRY(full_->applyFullChunk(cm));
    fullTargetSeq_ = std::max(fullTargetSeq_, cm->snapshot_seq());
    ++nextChunk_;
    if (!send(wire::buildAck(wire::Position(linkGeneration_, fullAppliedSeq_), true, cm->chunk())))
        return makeError(Errc::Closed, "link lost");
    if (cm->last_chunk()) {
        lastChunkSeen_ = true;
        if (fullAppliedSeq_ >= fullTargetSeq_) return finishFull();
        step(ReplicaEvent::LastChunk);
    }
    return {};
}

Status Replica::onIncremental(const wire::ChangeModel* cm) {
    if (state_ == ReplicaState::FullReplay || (state_ == ReplicaState::ReceivingFull && lastChunkSeen_)) {
        if (cm->first_seq() != fullAppliedSeq_ + 1)
            return makeError(Errc::Protocol, "change model " + std::to_string(cm->first_seq()) +
                                                 " does not follow " + std::to_string(fullAppliedSeq_));
        POSSYNC_TRY(full_->apply(cm, currentFrame_));
        fullAppliedSeq_ = cm->last_seq();
        if (fullAppliedSeq_ >= fullTargetSeq_) return finishFull();
        if (!send(wire::buildAck(wire::Position(linkGeneration_, fullAppliedSeq_), true,
                                 nextChunk_ ? nextChunk_ - 1 : 0)))
            return makeError(Errc::Closed, "link lost");
        return {};
    }
    if (state_ != ReplicaState::Streaming)
        return makeError(Errc::Protocol,
                         std::string("INCREMENTAL change model while ") + replicaStateName(state_));
    uint64_t expected = (batch_ ? batchSeq_ : position_) + 1;
    if (cm->first_seq() != expected)
        return makeError(Errc::Protocol, "change model for seq " + std::to_string(cm->first_seq()) + ".." +
                                             std::to_string(cm->last_seq()) + " does not follow position " +
                                             std::to_string(expected - 1));
    if (!batch_) {
        auto txn = store_.beginApply();
        if (!txn) return txn.takeError();
        batch_.emplace(std::move(*txn));
    }
    POSSYNC_TRY(batch_->apply(cm, currentFrame_));
    batchSeq_ = cm->last_seq();
    return {};
}

Status Replica::commitBatch() {
    if (!batch_) return {};
    POSSYNC_TRY(setPosition(*batch_, batchSeq_));
    std::vector<uint64_t> settled = batch_->ownSettled();
    bool withLineage = lineagePending_;
    auto r = batch_->commit();
    batch_.reset();
    if (!r) return r;
    if (withLineage) lineagePending_ = false;
    noteSettled(settled);
    generation_ = linkGeneration_;
    position_ = batchSeq_;
    synced_ = true;
    storeRecovered();
    if (!send(wire::buildAck(wire::Position(generation_, position_))))
        return makeError(Errc::Closed, "link lost");
    return {};
}

Status Replica::finishFull() {
    POSSYNC_TRY(setPosition(*full_, fullAppliedSeq_));
    std::vector<uint64_t> settled = full_->ownSettled();
    bool withLineage = lineagePending_;
    auto r = full_->commit();
    full_.reset();
    if (!r) return r;
    if (withLineage) lineagePending_ = false;
    noteSettled(settled);
    generation_ = linkGeneration_;
    position_ = fullAppliedSeq_;
    synced_ = true;
    acceptOnce_ = false;
    forceStarting_ = false;
    storeRecovered();
    stats_.fullSyncs++;
    LOG(Sync, Info) << "FULL sync complete: " << nextChunk_ << " chunks, position " << hex64(generation_)
                    << ":" << position_;
    step(ReplicaEvent::Consistent);
    if (!send(wire::buildAck(wire::Position(generation_, position_))))
        return makeError(Errc::Closed, "link lost");
    forward();
    return {};
}

Status Replica::setPosition(store::ApplyTxn& txn, uint64_t seq) {
    // A position always names the master's generation: up to a fork its data and the
    // ancestor's are the same (the log entries keep their own generation). The master's lineage
    // goes with the first commit of a link, so this board knows it if it is promoted in turn.
    if (lineagePending_) txn.setLineage(store::historyFromAncestry(linkGeneration_, masterTerm_, ancestry_));
    return txn.setPosition(linkGeneration_, seq);
}

Status Replica::adoptGeneration() {
    // Our data is an ancestor's up to a fork the master's generation continued: from now on it
    // is the master's generation's (DESIGN.md §10), with no change to apply.
    auto txn = store_.beginApply();
    if (!txn) return txn.takeError();
    POSSYNC_TRY(setPosition(*txn, position_));
    POSSYNC_TRY(txn->commit());
    LOG(Sync, Info) << "generation " << hex64(generation_) << " up to seq " << position_
                    << " continues as the master's generation " << hex64(linkGeneration_) << " (term "
                    << masterTerm_ << "): no FULL sync needed";
    lineagePending_ = false;
    generation_ = linkGeneration_;
    return {};
}

// --- slave writes (DESIGN.md §9) -------------------------------------------------------------

void Replica::outboxChanged() {
    forward();
}

void Replica::onSent() {
    forward();
}

void Replica::noteSettled(const std::vector<uint64_t>& ids) {
    for (uint64_t id : ids)
        if (auto it = inFlight_.find(id); it != inFlight_.end()) it->second.settled = true;
}

void Replica::forward() {
    if (!link_ || state_ != ReplicaState::Streaming) return;
    // A request too large for one frame first: its remaining pieces, while the queue has room.
    while (!fragmenting_.empty()) {
        if (link_->queuedBytes() >= config_.sendBufferBytes / 2) return;
        size_t piece = wire::fragmentDataBytes(masterMaxFrame_);
        size_t n = std::min<uint64_t>(piece, fragmenting_.size() - fragOffset_);
        if (!send(wire::buildFragment(fragmenting_.size(), fragOffset_,
                                      Bytes(fragmenting_.data() + fragOffset_, n))))
            return;
        fragOffset_ += n;
        if (fragOffset_ >= fragmenting_.size()) {
            fragmenting_.clear();
            fragmenting_.shrink_to_fit();
            fragOffset_ = 0;
        }
    }
    uint64_t held = 0;
    auto r = store_.readOutbox(forwardedUpTo_, [&](uint64_t id, Bytes frame) {
        if (inFlight_.size() >= kRequestWindow || link_->queuedBytes() >= config_.sendBufferBytes / 2 ||
            (!inFlight_.empty() && inFlightBytes_ + frame.size > kRequestWindowBytes) ||
            !fragmenting_.empty())
            return false;
        auto f = wire::verifyFrame(frame);
        const wire::WriteRequest* req = f ? wire::asWriteRequest(*f) : nullptr;
        forwardedUpTo_ = id;
        if (!req) {
            LOG(Sync, Error) << "outbox request " << id << " is damaged: not forwarded";
            stats_.error("outbox_damaged");
            return true;
        }
        if (!store::sharedWith(linkGeneration_, ancestry_, req->generation())) {
            // Written against data this board no longer holds (the master's data was
            // replaced): kept and reported, never applied to data it was not written against.
            // (Requests written against a generation the master continued after a promotion
            // drain into it, DESIGN.md §10: their conditions are evaluated there.)
            ++held;
            return true;
        }
        inFlight_.emplace(id, InFlight{false, frame.size});
        inFlightBytes_ += frame.size;
        stats_.requestsOut++;
        if (frame.size > masterMaxFrame_) {
            fragmenting_.assign(frame.data, frame.data + frame.size);
            fragOffset_ = 0;
            return false;
        }
        return send(std::vector<uint8_t>(frame.data, frame.data + frame.size));
    });
    if (!r) {
        LOG(Sync, Warning) << "cannot read the outbox: " << r.error().message;
        stats_.error("outbox");
        return;
    }
    if (held && held != heldLogged_) {
        heldLogged_ = held;
        LOG(Sync, Warning) << held << " queued request(s) were written against another generation of the "
                           << "master's data and are held (possync outbox)";
    }
    if (!fragmenting_.empty()) forward();
}

Status Replica::onWriteResult(const wire::WriteResult* result) {
    if (state_ != ReplicaState::Streaming) return makeError(Errc::Protocol, "WriteResult outside streaming");
    auto it = inFlight_.find(result->request_id());
    if (it == inFlight_.end())
        return makeError(Errc::Protocol, "WriteResult for request " + std::to_string(result->request_id()) +
                                             ", which was not sent");
    bool settled = it->second.settled;
    inFlightBytes_ -= it->second.bytes;
    inFlight_.erase(it);
    stats_.requestResults++;
    store::RequestResult r{result->request_id(), result->status() == wire::WriteStatus::REJECTED,
                           result->seq(), std::string(wire::textOf(result->reason()))};
    uint64_t applied = batch_ ? batchSeq_ : position_;
    if (!settled && (r.seq == 0 || r.seq <= applied)) {
        // No change model will settle it here: a rejection the master did not log, or a change
        // this board holds already (it came with a FULL sync). Settled now, in the batch of this
        // read when one is open (one writer per process), else in its own transaction.
        if (batch_) {
            POSSYNC_TRY(batch_->settleOwnRequest(r));
        } else {
            auto txn = store_.beginApply();
            if (!txn) return txn.takeError();
            POSSYNC_TRY(txn->settleOwnRequest(r));
            POSSYNC_TRY(txn->commit());
        }
        if (r.rejected) LOG(Sync, Warning) << "request " << r.requestId << " rejected: " << r.reason;
    }
    forward();
    return {};
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

Status Replica::acceptGeneration() {
    if (state_ != ReplicaState::WaitingOperator && state_ != ReplicaState::Backoff)
        return makeError(Errc::Refused, std::string("not waiting for a new master generation (state ") +
                                            replicaStateName(state_) + ")");
    acceptOnce_ = true;
    LOG(Sync, Warning) << "operator accepted the master's new generation: this slave's data will be replaced";
    step(ReplicaEvent::OperatorAccept);
    if (state_ == ReplicaState::Locating) {
        retry_->stop();
        locate();
    }
    return {};
}

Status Replica::resync() {
    forceStarting_ = true;
    LOG(Sync, Warning) << "operator asked for a FULL sync";
    switch (state_) {
        case ReplicaState::Streaming:
        case ReplicaState::AwaitWelcome:
            dropLink();
            step(ReplicaEvent::Resync);
            retry_->stop();
            retry_->start(0, 0, [this] {
                step(ReplicaEvent::RetryDue);
                locate();
            });
            return {};
        case ReplicaState::WaitingOperator:
            step(ReplicaEvent::Resync);
            retry_->stop();
            locate();
            return {};
        case ReplicaState::Backoff: step(ReplicaEvent::Resync); return {};
        default: return {};  // a FULL is under way or about to start: the flag applies to the next link
    }
}

// ---- Divergence detection (issue 10) -----------------------------------------------------
//
// Equal positions must mean equal data. A change forged or corrupted on the link (or a slave's
// file changed behind its back) breaks that silently: the slave streams on, at the master's
// position, with other data. The master therefore announces its combined watched-table digest
// at a position on Welcome and on its Pings; when this slave has committed exactly that
// position it compares. A mismatch is an alarm (status, error log, stats `errors_diverged`) and
// heals itself with a FULL sync, rate-limited so that a digest that never matches (a bug, a
// master that keeps diverging) costs one FULL per hold time, not a loop.

void Replica::noteMasterDigest(std::optional<wire::DigestAt> digest) {
    if (!digest || digest->generation != linkGeneration_) return;
    masterDigest_ = digest;
}

void Replica::checkDigest() {
    if (!masterDigest_ || !link_ || state_ != ReplicaState::Streaming || batch_) return;
    if (!synced_ || masterDigest_->generation != generation_ || position_ > masterDigest_->seq) {
        masterDigest_.reset();  // passed, or another history: nothing to compare
        return;
    }
    if (position_ < masterDigest_->seq) return;  // compared once we get there
    wire::DigestAt master = *masterDigest_;
    masterDigest_.reset();
    auto ours = store_.watchedDigest();
    if (!ours) {
        LOG(Sync, Warning) << "cannot read this slave's digest: " << ours.error().message;
        return;
    }
    if (ours->seq != master.seq || ours->generation != master.generation) return;  // raced a commit
    if (ours->digest == master.digest) {
        if (!diverged_.empty()) {
            LOG(Sync, Info) << "digest equals the master's again at seq " << master.seq
                            << ": divergence resolved";
            // Still shown for a while: an alarm that vanished within a second would go unseen.
            healed_ = diverged_ + "; healed: digests equal again at " + hex64(master.generation) + ":" +
                      std::to_string(master.seq);
            healedAtMs_ = clock_.nowMs();
        }
        diverged_.clear();
        return;
    }
    onDiverged(master, ours->digest);
}

void Replica::onDiverged(const wire::DigestAt& master, uint64_t ours) {
    stats_.error("diverged");
    uint64_t now = clock_.nowMs();
    // The hold is not reset by an equal digest (a slave that diverges again after every FULL
    // would loop), only by a quiet period as long as the longest hold.
    if (divergenceFullEver_ && now - lastDivergenceFullMs_ >= config_.divergenceFullMaxMs) {
        divergenceFullEver_ = false;
        divergenceHoldMs_ = 0;
    }
    std::string what = "diverged: at " + hex64(master.generation) + ":" + std::to_string(master.seq) +
                       " this slave's digest is " + hex64(ours) + ", the master's " + hex64(master.digest);
    bool held = divergenceFullEver_ && now - lastDivergenceFullMs_ < divergenceHoldMs_;
    if (held) {
        diverged_ = what + "; FULL sync held back for " +
                    std::to_string((lastDivergenceFullMs_ + divergenceHoldMs_ - now) / 1000) +
                    " s (the last one did not cure it)";
        LOG(Sync, Error) << diverged_;
        return;
    }
    diverged_ = what + "; FULL sync started";
    LOG(Sync, Error) << diverged_;
    divergenceHoldMs_ = divergenceFullEver_
                            ? std::min(std::max(divergenceHoldMs_ * 2, config_.divergenceFullMinMs),
                                       config_.divergenceFullMaxMs)
                            : config_.divergenceFullMinMs;
    divergenceFullEver_ = true;
    lastDivergenceFullMs_ = now;
    // As the operator's resync: the next Hello says STARTING; the data stays readable until
    // the FULL commits atomically.
    forceStarting_ = true;
    dropLink();
    step(ReplicaEvent::Resync);
    retry_->stop();
    retry_->start(0, 0, [this] {
        if (state_ != ReplicaState::Backoff) return;
        step(ReplicaEvent::RetryDue);
        locate();
    });
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
    s.waitingReason = waitingReason_;
    s.masterTerm = masterTerm_;
    s.highestTerm = highestTerm_;
    s.discarded = discarded_;
    s.diverged = diverged_;
    if (s.diverged.empty() && !healed_.empty() && clock_.nowMs() - healedAtMs_ < kShowHealedMs)
        s.diverged = healed_;
    return s;
}

}  // namespace possync::sync
