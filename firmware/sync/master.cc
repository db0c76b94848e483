#include "sync/master.h"

#include <algorithm>

#include "log/log.h"

namespace possync::sync {

POSSYNC_LOG_CATEGORY(Sync)

Result<std::unique_ptr<Master>> Master::create(uv::Loop& loop, store::Store& store, MasterConfig config) {
    std::unique_ptr<Master> m(new Master(loop, store, std::move(config)));
    POSSYNC_TRY(m->start());
    return m;
}

Master::~Master() {
    if (commitListener_) store_.removeCommitListener(commitListener_);
    trimWork_.reset();
}

Status Master::start() {
    auto v = view();
    if (!v) return v.takeError();
    head_ = v->head;
    generation_ = v->generation;
    {
        auto m = store_.meta();
        if (!m) return m.takeError();
        term_ = m->term;
    }
    auto listener = uv::TcpListener::create(
        loop_, config_.listen, [this](uv::Owned<uv::TcpStream> s) { onConnection(std::move(s)); });
    if (!listener)
        return makeError(listener.error().code,
                         "cannot listen on " + config_.listen + ": " + listener.error().message);
    listener_ = std::move(*listener);
    auto notify = uv::FsEvent::create(loop_, store_.notifyPath(), [this](const Status& st) {
        if (st.ok())
            onCommitted();
        else
            LOG(Sync, Warning) << "commit notification: " << st.error().message;
    });
    if (!notify) return notify.takeError();
    notify_ = std::move(*notify);
    commitListener_ = store_.addCommitListener([this](uint64_t) { onCommitted(); });
    auto trimTimer = uv::Timer::create(loop_);
    if (!trimTimer) return trimTimer.takeError();
    trimTimer_ = std::move(*trimTimer);
    trimTimer_->start(config_.trimIntervalMs, config_.trimIntervalMs, [this] { trim(); });
    auto reaper = uv::Timer::create(loop_);
    if (!reaper) return reaper.takeError();
    reaper_ = std::move(*reaper);
    LOG(Sync, Info) << "master of store " << config_.storeId << " listening on " << listener_->address()
                    << ", generation " << hex64(generation_) << ", head " << head_;
    return {};
}

Result<MasterView> Master::view() {
    auto rt = store_.beginRead();
    if (!rt) return rt.takeError();
    MasterView v;
    v.generation = rt->meta().generation;
    v.head = rt->meta().seq;
    v.resyncSeq = rt->meta().resyncSeq;
    v.history = rt->meta().history;
    v.term = rt->meta().term;
    rt->end();
    auto info = store_.logInfo();
    if (!info) return info.takeError();
    v.logFirst = info->first;
    head_ = v.head;
    return v;
}

std::shared_ptr<Snapshot> Master::snapshotForFull() {
    auto m = store_.meta();
    uint64_t gen = m ? m->generation : generation_;
    std::vector<std::string> tables = m ? m->watched : std::vector<std::string>{};
    if (snapshot_ && snapshot_->joinable() && snapshot_->generation() == gen && snapshot_->tables() == tables)
        return snapshot_;
    snapshot_ = std::make_shared<Snapshot>(store_, gen, std::move(tables), config_.chunkBytes);
    return snapshot_;
}

Result<Chunk> Master::chunk(Snapshot& snap, uint32_t number, bool& shared) {
    auto c = snap.chunk(number);
    if (c) {
        shared = c->shared;
        if (shared)
            stats_.snapshotChunksShared++;
        else
            stats_.snapshotChunksBuilt++;
    }
    return c;
}

uint64_t Master::pendingBudget() const {
    return std::max<uint64_t>(config_.maxLinks / 4, 2);
}

void Master::makeRoomForPending(const std::string& host) {
    // Why evict instead of refusing: links without a Hello cost a descriptor and a timer each and
    // prove nothing. Refusing new ones when the budget is full would let a few idle or trickling
    // connections lock every genuine slave out (a genuine slave sends its Hello at once, so it
    // is never the oldest for long); dropping the oldest keeps the door open.
    uint64_t pending = 0, pendingHere = 0;
    MasterSession* oldest = nullptr;
    MasterSession* oldestHere = nullptr;
    for (auto& s : sessions_) {
        if (s->closed() || s->state() != SessionState::AwaitHello) continue;
        ++pending;
        if (!oldest) oldest = s.get();
        if (s->host() == host) {
            ++pendingHere;
            if (!oldestHere) oldestHere = s.get();
        }
    }
    MasterSession* victim = nullptr;
    std::string why;
    if (pendingHere >= config_.maxLinksPerAddress) {
        victim = oldestHere;
        why = std::to_string(pendingHere) + " links without a Hello from " + host;
    } else if (pending >= pendingBudget()) {
        victim = oldest;
        why = std::to_string(pending) + " links without a Hello";
    }
    if (!victim) return;
    stats_.error("link_evicted");
    LOG(Sync, Warning) << "too many links: " << why << " (limit " << pendingBudget() << ", "
                       << config_.maxLinksPerAddress << " per address): dropping the oldest";
    victim->close(wire::ErrorCode::BUSY, "too many links without a Hello: the oldest is dropped", nullptr);
    // Freed now, not by the reaper: a burst of connections accepted in one callback would
    // otherwise hold one descriptor per eviction until the next loop turn. Safe here: we are in
    // the listener's callback, none of the victim's own callbacks is on the stack.
    std::erase_if(sessions_, [victim](const std::unique_ptr<MasterSession>& s) { return s.get() == victim; });
}

void Master::noteHelloTerm(const MasterSession& session, uint64_t term) {
    if (term <= term_ || !fenced_.empty()) return;
    std::string who = "the Hello of slave " + session.device() + " from " + session.host();
    LOG(Sync, Warning) << "store " << config_.storeId << " has a master of term " << term << " (seen in "
                       << who << "); this board is term " << term_;
    if (config_.onHigherTerm) config_.onHigherTerm(term, who);
}

void Master::fence(const std::string& reason) {
    if (reason.empty()) return;
    fenced_ = reason;
    // Closed now, the reaper frees them: a newer master exists, so nothing this board sends from
    // here on may reach a slave. A session in its handshake (perhaps the one whose Hello told
    // us, on the stack) is refused by admitHello instead.
    for (auto& s : sessions_)
        if (!s->closed() && s->state() != SessionState::AwaitHello)
            s->close(wire::ErrorCode::SHUTDOWN, "fenced: " + reason, nullptr);
    LOG(Sync, Warning) << "fenced: " << reason << "; serving no slave";
}

Status Master::admitHello(const MasterSession& session) {
    if (!fenced_.empty()) return makeError(Errc::Refused, "fenced: " + fenced_);
    uint64_t linked = 0, linkedHere = 0;
    for (auto& s : sessions_) {
        if (s.get() == &session || s->closed() || s->state() == SessionState::AwaitHello) continue;
        ++linked;
        if (s->host() == session.host()) ++linkedHere;
    }
    std::string why;
    if (linked >= config_.maxLinks)
        why = "too many slaves: " + std::to_string(linked) + " linked (--max-links " +
              std::to_string(config_.maxLinks) + ")";
    else if (linkedHere >= config_.maxLinksPerAddress)
        why = "too many slaves from " + session.host() + ": " + std::to_string(linkedHere) +
              " linked (--max-links-per-address " + std::to_string(config_.maxLinksPerAddress) + ")";
    if (why.empty()) return {};
    return makeError(Errc::Busy, why);
}

void Master::onConnection(uv::Owned<uv::TcpStream> stream) {
    if (stopping_) return;
    stats_.connects++;
    makeRoomForPending(stream->peerName().substr(0, stream->peerName().rfind(':')));
    const std::string peer = stream->peerName();
    std::unique_ptr<Link> link = std::make_unique<UvLink>(std::move(stream));
    const SecureLink* secure = nullptr;
    if (config_.security) {
        const LinkSecurity& sec = *config_.security;
        if (sec.admit && !sec.admit(peer.substr(0, peer.rfind(':')))) {
            link->close();  // too many failed handshakes from there lately: nothing is said
            return;
        }
        auto handshake =
            trust::Handshake::responder(sec.identity, sec.checkFor ? sec.checkFor(peer) : sec.check);
        auto sealed = std::make_unique<SecureLink>(std::move(link), std::move(handshake),
                                                   static_cast<uint32_t>(config_.maxFrameBytes));
        if (sec.failed)
            sealed->setHandshakeFailed([failed = sec.failed, peer](const Error& e) { failed(peer, e); });
        secure = sealed.get();
        link = std::move(sealed);
    }
    auto session = std::make_unique<MasterSession>(*this, std::move(link), nextSessionId_++);
    if (secure) secure_[session->id()] = secure;
    auto r = session->start();
    if (!r) {
        LOG(Sync, Warning) << "cannot start a session: " << r.error().message;
        secure_.erase(session->id());
        return;
    }
    sessions_.push_back(std::move(session));
}

void Master::onCommitted() {
    auto m = store_.meta();
    if (m) head_ = m->seq;
    pumpAll();
}

void Master::pumpAll() {
    for (auto& s : sessions_)
        if (!s->closed()) s->pump();
}

// Group commit (Store::applyRequests): one worker job applies what queued while the last one ran,
// in ONE transaction with one fsync, so a slave draining its outbox after a partition (up to
// kRequestWindow in flight per slave) is no longer paced by one fsync per request. Bounded so
// that the transaction (its dirty pages, the change models the sessions then stream), the time
// it holds the writer lock a POS process may be waiting for, and the answers it delays stay
// small: two slaves' full windows by count, a few typical requests' worth of bytes (a request
// larger than that still goes, alone).
constexpr size_t kMaxBatchRequests = 64;
constexpr size_t kMaxBatchBytes = size_t(4) << 20;

struct Master::RequestJob {
    uint64_t session = 0;
    std::vector<uint8_t> frame;  // a verified Frame holding one WriteRequest
};

struct Master::RequestBatch {
    std::vector<std::shared_ptr<RequestJob>> jobs;  // in the order submitted
    // One outcome per job, in order, or the error that aborted the whole batch.
    Result<std::vector<store::RequestOutcome>> result = makeError(Errc::Busy, "not applied yet");
};

void Master::sessionClosed(MasterSession* session) {
    // Its requests not yet begun go too: nothing of them was recorded, the slave resends them on
    // its next link. Kept, a peer that reconnects and sends a window each time (while a POS
    // process holds the writer lock) would grow this queue without bound.
    const uint64_t id = session->id();
    std::erase_if(requests_, [id](const std::shared_ptr<RequestJob>& j) { return j->session == id; });
    if (reaper_ && !stopping_) reaper_->start(0, 0, [this] { reap(); });
}

void Master::reap() {
    std::erase_if(sessions_, [this](const std::unique_ptr<MasterSession>& s) {
        if (!s->closed()) return false;
        secure_.erase(s->id());
        return true;
    });
}

std::optional<trust::PublicKey> Master::peerKey(uint64_t sessionId) const {
    auto it = secure_.find(sessionId);
    if (it == secure_.end() || !it->second->authenticated()) return std::nullopt;
    return it->second->peerKey();
}

bool Master::isCandidate(const MasterSession& session) const {
    auto it = secure_.find(session.id());
    return it != secure_.end() && it->second->standing() == trust::PeerStanding::Candidate;
}

std::string Master::candidateHello(const MasterSession& session) {
    auto key = peerKey(session.id());
    if (!key || !config_.onCandidateHello) return SessionHost::candidateHello(session);
    return config_.onCandidateHello(*key, session.device(), session.peer());
}

void Master::holdPeer(const trust::PublicKey& key) {
    for (auto& s : sessions_)
        if (!s->closed() && peerKey(s->id()) == key) s->hold();
}

void Master::releasePeer(const trust::PublicKey& key) {
    for (auto& s : sessions_)
        if (!s->closed() && peerKey(s->id()) == key) s->release();
}

size_t Master::dropPeer(const trust::PublicKey& key, const std::string& why) {
    size_t dropped = 0;
    for (auto& s : sessions_) {
        if (s->closed() || peerKey(s->id()) != key) continue;
        s->close(wire::ErrorCode::NOT_PAIRED, why, nullptr);
        ++dropped;
    }
    return dropped;
}

void Master::trim() {
    if (stopping_ || (trimWork_ && trimWork_->pending())) return;  // one trim in flight at most
    const std::optional<uint64_t> pinned = store_.minPin();
    auto needed = store_.trimNeeded(config_.trim, pinned);
    if (!needed) {
        LOG(Sync, Warning) << "log trim check failed: " << needed.error().message;
        storeUnusable(needed.error());
        return;
    }
    if (!*needed) return;
    // The worker gets the pin as it is now. A pin set lower before the trim commits (a slave
    // connecting meanwhile) may lose entries, exactly as if the trim had run just before it
    // connected: its session finds the gap at its next pump and takes a FULL sync.
    auto result = std::make_shared<Result<uint64_t>>(uint64_t(0));
    store::Store* store = &store_;
    const store::TrimLimits limits = config_.trim;
    auto work = uv::Work::queue(
        loop_, [store, limits, pinned, result] { *result = store->trimLogAt(limits, pinned); },
        [this, result] { onTrimmed(*result); });
    if (!work) {
        LOG(Sync, Warning) << "log trim not started: " << work.error().message;
        return;
    }
    trimWork_ = std::move(*work);
}

void Master::onTrimmed(const Result<uint64_t>& removed) {
    if (!removed) {
        LOG(Sync, Warning) << "log trim failed: " << removed.error().message;
        stats_.error("trim");
        // An ordinary failure leaves the log as it was: slaves are still served from it and
        // the next interval tries again.
        storeUnusable(removed.error());
        return;
    }
    stats_.logTrims++;
    LOG(Sync, Debug) << "trimmed " << *removed << " log entries";
    // Sessions whose entries went past the hard limit notice at their next pump.
    if (*removed) pumpAll();
}

void Master::storeUnusable(const Error& e) {
    // A failed meta-page write is not ordinary (see MasterConfig::onStoreUnusable). The trim's
    // own commit reports the write's errno; every transaction after it, the trim check of the
    // next interval included, reports MDB_PANIC (lmdb::fromMdb keeps mdb_strerror's text).
    if (e.message.find("MDB_PANIC") != std::string::npos && config_.onStoreUnusable)
        config_.onStoreUnusable("LMDB environment unusable after a failed write: " + e.message);
}

std::vector<SessionInfo> Master::sessions() const {
    std::vector<SessionInfo> out;
    for (const auto& s : sessions_)
        if (!s->closed()) out.push_back(s->info());
    return out;
}

void Master::stop() {
    stopping_ = true;
    for (auto& s : sessions_)
        if (!s->closed()) s->close(wire::ErrorCode::SHUTDOWN, "master shutting down", nullptr);
    sessions_.clear();
    listener_.reset();
    notify_.reset();
    trimTimer_.reset();
    reaper_.reset();
    // A trim not started yet never runs; a running one ends on its thread (Loop::close()
    // waits for it) and its completion is dropped.
    trimWork_.reset();
    requestWork_.reset();
    requestRetry_.reset();
    requests_.clear();
}

void Master::submitRequest(MasterSession& session, std::vector<uint8_t> frame) {
    auto job = std::make_shared<RequestJob>();
    job->session = session.id();
    job->frame = std::move(frame);
    requests_.push_back(std::move(job));
    runRequests();
}

void Master::runRequests() {
    if (stopping_ || requests_.empty() || (requestWork_ && requestWork_->pending())) return;
    auto batch = std::make_shared<RequestBatch>();
    size_t bytes = 0;
    while (!requests_.empty() && batch->jobs.size() < kMaxBatchRequests &&
           (batch->jobs.empty() || bytes + requests_.front()->frame.size() <= kMaxBatchBytes)) {
        bytes += requests_.front()->frame.size();
        batch->jobs.push_back(std::move(requests_.front()));
        requests_.pop_front();
    }
    store::Store* store = &store_;
    auto work = uv::Work::queue(
        loop_,
        [store, batch] {
            // Verified on the loop when they arrived; these are the same bytes.
            std::vector<const wire::WriteRequest*> reqs;
            reqs.reserve(batch->jobs.size());
            for (const auto& job : batch->jobs)
                reqs.push_back(wire::GetFrame(job->frame.data())->message_as_WriteRequest());
            batch->result = store->applyRequests(reqs);
        },
        [this, batch] { onRequestsApplied(batch); });
    if (!work) {
        batch->result = work.takeError();
        onRequestsApplied(batch);
        return;
    }
    requestWork_ = std::move(*work);
}

void Master::onRequestsApplied(const std::shared_ptr<RequestBatch>& batch) {
    requestWork_.reset();
    auto sessionOf = [&](const RequestJob& job) -> MasterSession* {
        for (auto& s : sessions_)
            if (s->id() == job.session && !s->closed()) return s.get();
        return nullptr;
    };
    if (!batch->result && batch->result.error().code == Errc::Busy) {
        // A table new to this process cannot get its handle while the loop has a read
        // transaction open: try the batch again in a moment, first in line, in its order.
        for (auto it = batch->jobs.rbegin(); it != batch->jobs.rend(); ++it) requests_.push_front(*it);
        if (!requestRetry_) {
            auto t = uv::Timer::create(loop_);
            if (t) requestRetry_ = std::move(*t);
        }
        if (requestRetry_) {
            requestRetry_->start(20, 0, [this] { runRequests(); });
            return;
        }
        for (size_t i = 0; i < batch->jobs.size(); ++i) requests_.pop_front();
    }
    if (!batch->result) {
        stats_.error("request_apply");
        LOG(Sync, Warning) << "cannot apply " << batch->jobs.size()
                           << " write request(s): " << batch->result.error().message;
        // Nothing of the batch was committed, so every request in it is handled as a failed one
        // was alone: its slave resends it on its next link (exactly once: nothing was recorded),
        // and the requests that link sent after it with it. Applying those now would leave a
        // gap: this one, resent, would then sit below the client's last request id and be taken
        // for one handled before (its outcome "no longer kept"), i.e. lost.
        for (const auto& job : batch->jobs) {
            const uint64_t id = job->session;
            std::erase_if(requests_, [id](const std::shared_ptr<RequestJob>& j) { return j->session == id; });
            if (MasterSession* session = sessionOf(*job))
                session->close(wire::ErrorCode::INTERNAL,
                               "cannot apply your write request: " + batch->result.error().message, "store");
        }
        storeUnusable(batch->result.error());
    } else {
        // The batch's log entries first (a quiet commit calls no listener), then the answers:
        // a slave usually holds a change before it hears its result.
        const std::vector<store::RequestOutcome>& outcomes = *batch->result;
        bool logged = false;
        for (const auto& o : outcomes) logged = logged || o.result.seq != 0;
        if (logged) onCommitted();
        for (size_t i = 0; i < batch->jobs.size() && i < outcomes.size(); ++i) {
            MasterSession* session = sessionOf(*batch->jobs[i]);
            const store::RequestResult& r = outcomes[i].result;
            if (r.rejected && !outcomes[i].duplicate)
                LOG(Sync, Info) << "request " << r.requestId << " of "
                                << (session ? session->device() : std::string("a closed link"))
                                << " rejected: " << r.reason;
            if (session) session->requestDone(outcomes[i]);
        }
    }
    runRequests();
}

}  // namespace possync::sync
