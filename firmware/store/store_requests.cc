// Store: slave writes forwarded to the master (DESIGN.md §9): the master's exactly-once apply of
// a request, and a slave's view of its outbox.
#include <cstring>
#include <map>
#include <span>

#include "log/log.h"

#include "store/store.h"
#include "wire/bounds.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::store {

POSSYNC_LOG_DECLARE(Store);

namespace {

// Why a request cannot be applied whatever the data holds (a bug or a rogue slave), or "".
std::string malformed(const wire::WriteRequest* req, const Meta& meta, size_t maxKey) {
    auto tableProblem = [&](std::string_view table) -> std::string {
        auto v = validateTableName(table);
        if (!v) return v.error().message;
        if (!meta.isWatched(table))
            return "table '" + std::string(table) + "' is not shared (the master does not watch it)";
        return {};
    };
    auto keyProblem = [&](std::string_view table, Bytes key) -> std::string {
        if (key.size == 0) return "empty key in " + std::string(table);
        if (key.size > maxKey)
            return "key of " + std::to_string(key.size) + " bytes in " + std::string(table) +
                   " (LMDB's limit is " + std::to_string(maxKey) + ")";
        return {};
    };
    if (const auto* conditions = req->conditions()) {
        for (const wire::Condition* c : *conditions) {
            std::string_view table = wire::textOf(c->table());
            if (auto p = tableProblem(table); !p.empty()) return "condition: " + p;
            Bytes key = c->key() ? Bytes(c->key()->data(), c->key()->size()) : Bytes();
            if (auto p = keyProblem(table, key); !p.empty()) return "condition: " + p;
            if (c->require() > wire::Require::MAX) return "condition of unknown kind";
        }
    }
    if (const auto* changes = req->changes()) {
        for (const wire::Change* c : *changes) {
            std::string_view table = wire::tableOf(c);
            if (auto p = tableProblem(table); !p.empty()) return p;
            if (c->op() > wire::Op::MAX) return "change with unknown op " + std::to_string(int(c->op()));
            if (c->op() == wire::Op::CLEAR) continue;
            if (auto p = keyProblem(table, wire::keyOf(c)); !p.empty()) return p;
            if (c->op() == wire::Op::ADD && wire::valueOf(c).size != 8)
                return "ADD on " + std::string(table) + "/" + describeKey(wire::keyOf(c)) +
                       " without an 8-byte delta";
        }
    }
    return {};
}

Require requireOf(wire::Require r) {
    return r == wire::Require::ABSENT    ? Require::Absent
           : r == wire::Require::PRESENT ? Require::Present
                                         : Require::ValueHash;
}

// Errors that say nothing about the request (the board's disk, its map, a busy handle): the
// request is not answered and may be retried. Anything else is the request's own doing.
bool retryable(const Error& e) {
    return e.code == Errc::MapFull || e.code == Errc::Io || e.code == Errc::Busy || e.code == Errc::Closed;
}

}  // namespace

// What became of one request of a batch in the open transaction.
struct Store::BatchStep {
    RequestOutcome outcome;
    // The request failed after some of its changes were written: the transaction cannot take
    // them back, so the batch runs again from its start with this request logged as rejected
    // for `reason` without applying it (as applyRequest did before group commit: a rejection
    // is decided, the writer lock released, the rejection logged in a new transaction).
    bool rerun = false;
    std::string reason;
};

Result<Store::BatchStep> Store::applyInBatch(WriteTxn& w, const wire::WriteRequest* req,
                                             const std::string* rejected) {
    std::string device(wire::textOf(req->device_id()));
    const uint64_t id = req->request_id();
    auto done = [](RequestOutcome o) {
        BatchStep step;
        step.outcome = std::move(o);
        return step;
    };
    auto rerun = [](std::string why) {
        BatchStep step;
        step.rerun = true;
        step.reason = std::move(why);
        return step;
    };
    // Refused before anything of it is written: no log entry, no record (seq 0).
    auto refuse = [&](std::string why) {
        return done(RequestOutcome{RequestResult{id, true, 0, std::move(why)}, false});
    };
    // The device id keys possync.clients and possync.results: an empty one is no LMDB key at all
    // (it would fail every request of that peer as a retryable error, forever).
    if (device.empty() || !wire::isIdText(device)) return refuse("request without a valid device id");
    // A request this device had handled before (in an earlier transaction, earlier in this
    // batch, or by another writer while a rerun waited for the writer lock): its stored outcome,
    // nothing applied.
    {
        auto client = findClient(w.txn_, requestDbs_, device);
        if (!client) return client.takeError();
        if (*client && id <= (*client)->lastRequest) {
            auto stored = findResult(w.txn_, requestDbs_, device, id);
            if (!stored) return stored.takeError();
            if (*stored) return done(RequestOutcome{**stored, true});
            return done(RequestOutcome{
                RequestResult{
                    id, true, (*client)->lastSeq,
                    "request " + std::to_string(id) + " of " + device + " was handled before (its last is " +
                        std::to_string((*client)->lastRequest) + ") and its outcome is no longer kept"},
                true});
        }
    }
    if (id == 0) return refuse("request id 0");
    // A request written against an ancestor of this generation (queued on a slave before a
    // promotion) applies: its conditions are checked on the data here, as any request's.
    if (req->generation() != w.meta().generation && !sharedUpTo(w.meta().history, req->generation()))
        return refuse("written against generation " + hex64(req->generation()) +
                      "; the master holds generation " + hex64(w.meta().generation));
    if (auto p = malformed(req, w.meta(), maxKeySize()); !p.empty()) return refuse(p);

    // Clipped as the log entry's origin clips it, so the master's stored outcome, its
    // WriteResult and every slave's record say the same words.
    auto clipped = [](const Error& e) {
        return std::string(wire::clipUtf8(e.message, wire::kMaxReasonBytes));
    };
    std::string reason;
    if (rejected) {
        reason = *rejected;
    } else {
        const uint64_t writesBefore = w.writes();
        auto apply = [&]() -> Status {
            if (const auto* conditions = req->conditions())
                for (const wire::Condition* c : *conditions)
                    POSSYNC_TRY(w.require(wire::textOf(c->table()), Bytes(c->key()->data(), c->key()->size()),
                                          requireOf(c->require()), c->hash()));
            if (const auto* changes = req->changes()) {
                for (const wire::Change* c : *changes) {
                    std::string_view table = wire::tableOf(c);
                    switch (c->op()) {
                        case wire::Op::PUT:
                            POSSYNC_TRY(w.put(table, wire::keyOf(c), wire::valueOf(c)));
                            break;
                        case wire::Op::DEL: {
                            auto d = w.del(table, wire::keyOf(c));
                            if (!d) return d.takeError();
                            break;
                        }
                        case wire::Op::CLEAR: POSSYNC_TRY(w.clear(table)); break;
                        case wire::Op::ADD:
                            POSSYNC_TRY(w.add(table, wire::keyOf(c),
                                              static_cast<int64_t>(getBe64(wire::valueOf(c).data))));
                            break;
                    }
                }
            }
            return {};
        };
        if (auto a = apply(); !a) {
            if (retryable(a.error())) return a.takeError();
            // The request's own doing (a condition, an overflow, a size): logged as rejected, with
            // no changes, so every board learns the outcome in order.
            reason = clipped(a.error());
            // A failed condition is checked before any change: nothing to take back, the batch
            // goes on in this transaction. Anything else may have written part of the request.
            if (a.error().code != Errc::Rejected || w.writes() != writesBefore) return rerun(reason);
            w.clearRejection();
        }
    }
    wire::OriginFields origin;
    origin.deviceId = device;
    origin.requestId = id;
    origin.status = reason.empty() ? wire::WriteStatus::COMMITTED : wire::WriteStatus::REJECTED;
    origin.reason = reason;
    w.setOrigin(origin, true);
    auto seq = w.logEntry();
    if (!seq) {
        // Its change model with the origin is larger than every board can take: as a capture
        // over the limit while applying, the request's own doing, rejected (a rejection's entry
        // has no changes). It was an error before group commit, which the slave met again on
        // every link; in a batch it would fail the requests of every other slave too.
        if (seq.error().code == Errc::TooLarge && reason.empty()) return rerun(clipped(seq.error()));
        return seq.takeError();
    }
    return done(RequestOutcome{RequestResult{id, !reason.empty(), *seq, reason}, false});
}

Result<std::vector<RequestOutcome>> Store::applyRequests(
    std::span<const wire::WriteRequest* const> requests) {
    // Index -> reason: requests that failed after writing part of themselves in an earlier run.
    // Each rerun adds one, so there are at most requests.size() reruns.
    std::map<size_t, std::string> rejected;
    while (true) {
        auto begun = beginWrite();
        if (!begun) return begun.takeError();
        WriteTxn w(std::move(*begun));
        if (w.forwarding())
            return makeError(Errc::Refused,
                             dir_ + " belongs to a slave board: it does not apply forwarded writes");
        std::vector<RequestOutcome> outcomes;
        outcomes.reserve(requests.size());
        bool rerun = false, logged = false;
        for (size_t i = 0; i < requests.size(); ++i) {
            auto r = rejected.find(i);
            auto step = applyInBatch(w, requests[i], r == rejected.end() ? nullptr : &r->second);
            if (!step) return step.takeError();  // the batch aborts: nothing of it is committed
            if (step->rerun) {
                rejected.emplace(i, std::move(step->reason));
                rerun = true;
                break;
            }
            logged = logged || (step->outcome.result.seq != 0 && !step->outcome.duplicate);
            outcomes.push_back(std::move(step->outcome));
        }
        if (rerun) {
            w.abort();
            continue;
        }
        // Only duplicates and refusals: nothing written, nothing to commit or announce.
        if (!logged) {
            w.abort();
            return outcomes;
        }
        // One commit (one fsync) and one notify touch for the whole batch.
        auto seq = w.commit();
        if (!seq) return seq.takeError();
        return outcomes;
    }
}

Result<RequestOutcome> Store::applyRequest(const wire::WriteRequest* req) {
    auto r = applyRequests(std::span<const wire::WriteRequest* const>(&req, 1));
    if (!r) return r.takeError();
    return std::move(r->front());
}

Result<OutboxInfo> Store::outboxInfo() {
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    OutboxInfo info;
    const Meta& m = rt->meta();
    info.count = m.outboxCount;
    info.bytes = m.outboxBytes;
    info.maxBytes = m.outboxMaxBytes ? m.outboxMaxBytes : kDefaultOutboxMaxBytes;
    info.nextRequest = m.nextRequest;
    info.lastRejection = m.lastRejection;
    if (!hasRequestDbs_) return info;
    auto cur = lmdb::Cursor::open(rt->raw(), requestDbs_.outbox);
    if (!cur) return cur.takeError();
    Bytes k, v;
    for (auto r = cur->first(k, v);; r = cur->next(k, v)) {
        if (!r) return r.takeError();
        if (!*r) break;
        auto f = wire::verifyFrame(v);
        const wire::WriteRequest* req = f ? wire::asWriteRequest(*f) : nullptr;
        if (!info.oldestId && k.size == 8) {
            info.oldestId = getBe64(k.data);
            info.oldestCreatedMs = req ? req->created_ms() : 0;
        }
        if (req && !sharedUpTo(m.history, req->generation())) ++info.held;
    }
    return info;
}

Status Store::readOutbox(uint64_t after, const std::function<bool(uint64_t, Bytes)>& fn) {
    if (!hasRequestDbs_) return {};
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    auto cur = lmdb::Cursor::open(rt->raw(), requestDbs_.outbox);
    if (!cur) return cur.takeError();
    uint8_t from[8];
    putBe64(from, after + 1);
    Bytes k, v;
    for (auto r = cur->seek(Bytes(from, 8), k, v);; r = cur->next(k, v)) {
        if (!r) return r.takeError();
        if (!*r || k.size != 8) break;
        if (!fn(getBe64(k.data), v)) break;
    }
    return {};
}

Result<RequestState> Store::requestState(uint64_t requestId) {
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    RequestState st;
    if (!hasRequestDbs_) return st;
    uint8_t key[8];
    putBe64(key, requestId);
    auto queued = rt->raw().get(requestDbs_.outbox, Bytes(key, 8));
    if (!queued) return queued.takeError();
    if (*queued) {
        st.kind = RequestState::Pending;
        return st;
    }
    auto r = findResult(rt->raw(), requestDbs_, rt->meta().device, requestId);
    if (!r) return r.takeError();
    if (*r) {
        st.kind = (*r)->rejected ? RequestState::Rejected : RequestState::Committed;
        st.seq = (*r)->seq;
        st.reason = (*r)->reason;
        return st;
    }
    st.reason = requestId >= rt->meta().nextRequest
                    ? "no request " + std::to_string(requestId) + " was ever queued on this board"
                    : "the outcome of request " + std::to_string(requestId) + " is no longer kept";
    return st;
}

Status Store::setOutboxMaxBytes(uint64_t bytes) {
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    POSSYNC_TRY(writeMetaU64(*txn, metaDbi_, "outbox_max", bytes));
    return txn->commit();
}

Status Store::raiseNextRequest(uint64_t lastHandled) {
    {
        auto m = meta();
        if (!m) return m.takeError();
        if (m->nextRequest > lastHandled) return {};
    }
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    if (m->nextRequest > lastHandled) return {};
    POSSYNC_TRY(writeMetaU64(*txn, metaDbi_, "next_request", lastHandled + 1));
    POSSYNC_TRY(txn->commit());
    LOG(Store, Warning) << "the master handled requests of device " << m->device << " up to " << lastHandled
                        << ", but this directory would have used " << m->nextRequest
                        << " next (was it made again?): request ids continue at " << lastHandled + 1;
    return {};
}

Result<ApplyTxn> Store::beginFullApply() {
    auto lock = lockFull();
    if (!lock) return lock.takeError();
    auto txn = beginApply();
    if (!txn) return txn.takeError();
    txn->fullLock_ = std::move(*lock);
    return txn;
}

Result<std::vector<ClientRecord>> Store::clients() {
    if (!hasRequestDbs_) return std::vector<ClientRecord>{};
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    return listClients(rt->raw(), requestDbs_);
}

}  // namespace possync::store
