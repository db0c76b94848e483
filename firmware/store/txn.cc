#include "store/txn.h"

#include <chrono>

#include "store/digest.h"
#include "store/store.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::store {

// --- TableSet ---------------------------------------------------------------------------

Result<TableSet::Entry*> TableSet::get(lmdb::Txn& txn, lmdb::Dbi digestDbi, const Meta& meta,
                                       std::string_view name, bool create) {
    for (auto& e : entries_)
        if (e->name == name) return e.get();
    POSSYNC_TRY(validateTableName(name));
    auto dbi = txn.open(name, create);
    if (!dbi) return dbi.takeError();
    auto e = std::make_unique<Entry>();
    e->name = std::string(name);
    e->dbi = *dbi;
    e->seed = tableSeed(name);
    e->watched = meta.isWatched(name);
    auto d = txn.get(digestDbi, Bytes(name));
    if (!d) return d.takeError();
    if (*d && (*d)->size == 8) e->digest = getBe64((*d)->data);
    entries_.push_back(std::move(e));
    return entries_.back().get();
}

Status TableSet::flushDigests(lmdb::Txn& txn, lmdb::Dbi digestDbi) {
    for (auto& e : entries_) {
        if (!e->dirty) continue;
        uint8_t be[8];
        putBe64(be, e->digest);
        POSSYNC_TRY(txn.put(digestDbi, Bytes(e->name), Bytes(be, 8)));
        e->dirty = false;
    }
    return {};
}

Status checkKeySize(Bytes key, size_t maxKey) {
    if (key.size == 0) return makeError(Errc::InvalidArgument, "key is empty");
    if (key.size > maxKey)
        return makeError(Errc::TooLarge, "key is " + std::to_string(key.size) + " bytes; LMDB's limit is " +
                                             std::to_string(maxKey));
    return {};
}

// --- WriteTxn ---------------------------------------------------------------------------

WriteTxn::WriteTxn(Store* store, lmdb::Txn txn, Meta meta)
    : store_(store),
      txn_(std::move(txn)),
      meta_(std::move(meta)),
      changes_(std::make_unique<wire::ChangeModelWriter>()) {
    if (meta_.role == Role::Slave) request_ = std::make_unique<wire::RequestWriter>();
}
WriteTxn::WriteTxn(WriteTxn&&) noexcept = default;
WriteTxn& WriteTxn::operator=(WriteTxn&&) noexcept = default;
WriteTxn::~WriteTxn() = default;

size_t WriteTxn::capturedChanges() const {
    return changes_ ? changes_->changeCount() : 0;
}

Status WriteTxn::fail(Error e) {
    if (!failed_) failed_ = e;
    return e;
}

Status WriteTxn::checkKey(Bytes key) const {
    return checkKeySize(key, store_->maxKeySize());
}

Status WriteTxn::checkCapture() {
    size_t size = changes_->sizeSoFar() + (request_ ? request_->sizeSoFar() : 0);
    if (size > store_->maxChangeModelBytes())
        return fail(makeError(Errc::TooLarge,
                              "transaction too large to replicate: its change model exceeds " +
                                  std::to_string(store_->maxChangeModelBytes()) +
                                  " bytes, the most every board can take; commit in smaller transactions"));
    return {};
}

#define POSSYNC_WTRY(expr)                         \
    do {                                           \
        auto r_ = (expr);                          \
        if (!r_.ok()) return fail(r_.takeError()); \
    } while (0)

Status WriteTxn::put(std::string_view table, Bytes key, Bytes value) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    POSSYNC_TRY(checkKey(key));
    if (forwards(table)) {
        request_->change(table, wire::Op::PUT, key, value);
        return checkCapture();
    }
    ++writes_;  // from here on LMDB may hold some of it (a table created, at least)
    auto t = tables_.get(txn_, store_->digestDbi(), meta_, table, true);
    if (!t) return t.error().code == Errc::InvalidArgument ? t.takeError() : fail(t.takeError());
    TableSet::Entry& e = **t;
    auto old = txn_.get(e.dbi, key);
    if (!old) return fail(old.takeError());
    if (*old) e.digest ^= entryHash(e.seed, key, **old);
    POSSYNC_WTRY(txn_.put(e.dbi, key, value));
    e.digest ^= entryHash(e.seed, key, value);
    e.dirty = true;
    if (e.watched) {
        changes_->put(table, key, value);
        return checkCapture();
    }
    return {};
}

Result<bool> WriteTxn::del(std::string_view table, Bytes key) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    POSSYNC_TRY(checkKey(key));
    if (forwards(table)) {
        // Whether the key exists is the master's to say when it applies the request.
        request_->change(table, wire::Op::DEL, key, {});
        auto c = checkCapture();
        if (!c) return c.takeError();
        return true;
    }
    ++writes_;
    auto t = tables_.get(txn_, store_->digestDbi(), meta_, table, true);
    if (!t) return t.error().code == Errc::InvalidArgument ? t.takeError() : fail(t.takeError()).takeError();
    TableSet::Entry& e = **t;
    auto old = txn_.get(e.dbi, key);
    if (!old) return fail(old.takeError()).takeError();
    if (!*old) return false;
    e.digest ^= entryHash(e.seed, key, **old);
    auto r = txn_.del(e.dbi, key);
    if (!r) return fail(r.takeError()).takeError();
    e.dirty = true;
    if (e.watched) {
        changes_->del(table, key);
        auto c = checkCapture();
        if (!c) return c.takeError();
    }
    return true;
}

Status WriteTxn::clear(std::string_view table) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    if (forwards(table)) {
        POSSYNC_TRY(validateTableName(table));
        request_->change(table, wire::Op::CLEAR, {}, {});
        return checkCapture();
    }
    ++writes_;
    auto t = tables_.get(txn_, store_->digestDbi(), meta_, table, true);
    if (!t) return t.error().code == Errc::InvalidArgument ? t.takeError() : fail(t.takeError());
    TableSet::Entry& e = **t;
    POSSYNC_WTRY(txn_.clear(e.dbi));
    e.digest = 0;
    e.dirty = true;
    if (e.watched) {
        changes_->clear(table);
        return checkCapture();
    }
    return {};
}

Status WriteTxn::add(std::string_view table, Bytes key, int64_t delta) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    POSSYNC_TRY(checkKey(key));
    if (forwards(table)) {
        uint8_t be[8];
        encodeCounter(be, delta);
        request_->change(table, wire::Op::ADD, key, Bytes(be, 8));
        return checkCapture();
    }
    POSSYNC_TRY(validateTableName(table));
    auto old = get(table, key);
    int64_t value = 0;
    if (!old) {
        if (old.error().code != Errc::NotFound) return fail(old.takeError());
    } else if (*old) {
        auto v = decodeCounter(table, key, **old);
        if (!v) return fail(v.takeError());
        value = *v;
    }
    int64_t sum = 0;
    if (__builtin_add_overflow(value, delta, &sum))
        return fail(makeError(Errc::InvalidArgument, "ADD on " + std::string(table) + "/" + describeKey(key) +
                                                         " overflows: " + std::to_string(value) + " + " +
                                                         std::to_string(delta)));
    uint8_t be[8];
    encodeCounter(be, sum);
    return put(table, key, Bytes(be, 8));
}

Status WriteTxn::require(std::string_view table, Bytes key, Require what, uint64_t hash) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    POSSYNC_TRY(checkKey(key));
    POSSYNC_TRY(validateTableName(table));
    if (forwards(table)) {
        request_->condition(table, key,
                            what == Require::Absent    ? wire::Require::ABSENT
                            : what == Require::Present ? wire::Require::PRESENT
                                                       : wire::Require::VALUE_HASH,
                            hash);
        return checkCapture();
    }
    auto v = get(table, key);
    std::optional<Bytes> value;
    if (!v) {
        if (v.error().code != Errc::NotFound) return fail(v.takeError());
    } else {
        value = *v;
    }
    std::string where = std::string(table) + "/" + describeKey(key);
    switch (what) {
        case Require::Absent:
            if (value)
                return fail(
                    makeError(Errc::Rejected, "condition failed: " + where + " exists (required absent)"));
            break;
        case Require::Present:
            if (!value)
                return fail(makeError(Errc::Rejected,
                                      "condition failed: " + where + " is absent (required present)"));
            break;
        case Require::ValueHash:
            if (!value)
                return fail(makeError(Errc::Rejected,
                                      "condition failed: " + where + " is absent (required a value)"));
            if (valueHash(*value) != hash)
                return fail(makeError(Errc::Rejected, "condition failed: " + where +
                                                          " holds another value (its hash differs)"));
            break;
    }
    return {};
}

Result<std::optional<Bytes>> WriteTxn::get(std::string_view table, Bytes key) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    POSSYNC_TRY(checkKey(key));
    auto t = tables_.get(txn_, store_->digestDbi(), meta_, table, false);
    if (!t) return t.takeError();
    return txn_.get((*t)->dbi, key);
}

// The trust set is the master's (DESIGN.md §11): a slave's copy changes only by replication.
static Error trustOnSlave() {
    return makeError(Errc::Refused, "the trust set is written on the master");
}

Status WriteTxn::putTrust(const TrustMember& member) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    if (request_) return trustOnSlave();
    auto value = encodeTrustValue(member);
    if (!value) return value.takeError();
    ++writes_;
    Bytes key = trustKeyBytes(member.key);
    POSSYNC_WTRY(txn_.put(store_->trustDbi(), key, Bytes(*value)));
    // Captured as a watched table's change: the log entry is how slaves learn of it.
    changes_->put(kTrustDb, key, Bytes(*value));
    return checkCapture();
}

Result<bool> WriteTxn::delTrust(const TrustKey& key) {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    if (request_) return trustOnSlave();
    Bytes k = trustKeyBytes(key);
    auto old = txn_.get(store_->trustDbi(), k);
    if (!old) return fail(old.takeError()).takeError();
    if (!*old) return false;
    ++writes_;
    auto r = txn_.del(store_->trustDbi(), k);
    if (!r) return fail(r.takeError()).takeError();
    changes_->del(kTrustDb, k);
    auto c = checkCapture();
    if (!c) return c.takeError();
    return true;
}

Result<uint64_t> WriteTxn::commit() {
    auto r = commitWrite();
    if (!r) return r.takeError();
    return r->seq;
}

void WriteTxn::setOrigin(const wire::OriginFields& origin, bool quiet) {
    originDevice_ = std::string(origin.deviceId);
    originReason_ = std::string(origin.reason);
    origin_ = std::make_unique<wire::OriginFields>(origin);
    origin_->deviceId = originDevice_;
    origin_->reason = originReason_;
    quiet_ = quiet;
}

Result<CommitInfo> WriteTxn::commitRequest() {
    // Local tables and the request in ONE transaction: the outbox entry, the next id, the
    // outbox's size (its bound checked here, under the writer lock).
    POSSYNC_TRY(tables_.flushDigests(txn_, store_->digestDbi()));
    CommitInfo info;
    if (!request_->empty()) {
        info.request = meta_.nextRequest;
        uint64_t nowMs = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                   std::chrono::system_clock::now().time_since_epoch())
                                                   .count());
        Bytes frame = request_->finish(meta_.device, info.request, meta_.generation, nowMs);
        if (frame.size > store_->maxChangeModelBytes())
            return makeError(Errc::TooLarge, "transaction too large to forward (" +
                                                 std::to_string(frame.size) +
                                                 " bytes); commit in smaller transactions");
        uint64_t bound = meta_.outboxMaxBytes ? meta_.outboxMaxBytes : kDefaultOutboxMaxBytes;
        if (meta_.outboxBytes + frame.size > bound)
            return makeError(Errc::Full,
                             "the outbox is full: " + std::to_string(meta_.outboxCount) + " requests, " +
                                 std::to_string(meta_.outboxBytes) + " bytes waiting for the master (limit " +
                                 std::to_string(bound) +
                                 " bytes, --outbox-max-bytes); nothing was queued. Is the master reachable?");
        uint8_t key[8];
        putBe64(key, info.request);
        auto dbs = store_->requestDbs();
        POSSYNC_TRY(txn_.put(dbs.outbox, Bytes(key, 8), frame, lmdb::Txn::putAppend));
        POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "next_request", info.request + 1));
        POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "outbox_count", meta_.outboxCount + 1));
        POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "outbox_bytes", meta_.outboxBytes + frame.size));
    }
    POSSYNC_TRY(txn_.commit());
    return info;
}

Result<CommitInfo> WriteTxn::commitWrite() {
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    if (failed_) {
        txn_.abort();
        return *failed_;
    }
    if (request_) {
        auto r = commitRequest();
        txn_.abort();
        if (!r) return r;
        // Wakes the daemon (it forwards the request) like a master's log entry does.
        store_->committed(0, r->request != 0);
        return r;
    }
    auto doCommit = [&]() -> Result<uint64_t> {
        POSSYNC_TRY(tables_.flushDigests(txn_, store_->digestDbi()));
        auto seq = logEntry();
        if (!seq) return seq.takeError();
        POSSYNC_TRY(txn_.commit());
        return *seq;
    };
    auto r = doCommit();
    txn_.abort();
    if (!r) return r.takeError();
    if (quiet_)
        store_->touchNotify();
    else
        store_->committed(*r, *r != 0);
    return CommitInfo{*r, 0};
}

Result<uint64_t> WriteTxn::logEntry() {
    if (failed_) return *failed_;
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    if (changes_->empty() && !origin_) return uint64_t(0);
    const uint64_t seq = meta_.seq + 1;
    Bytes frame = changes_->finishIncremental(meta_.generation, seq, seq, origin_.get());
    // Not a failure of the transaction: nothing of this entry is written yet (a batch takes the
    // request out and runs again).
    if (frame.size > store_->maxChangeModelBytes())
        return makeError(Errc::TooLarge,
                         "transaction too large to replicate (" + std::to_string(frame.size) + " bytes)");
    auto write = [&]() -> Status {
        uint8_t key[8];
        putBe64(key, seq);
        POSSYNC_TRY(txn_.put(store_->logDbi(), Bytes(key, 8), frame, lmdb::Txn::putAppend));
        POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "seq", seq));
        POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "log_bytes", meta_.logBytes + frame.size));
        if (origin_) {
            RequestResult result{origin_->requestId, origin_->status == wire::WriteStatus::REJECTED, seq,
                                 originReason_};
            POSSYNC_TRY(recordOutcome(txn_, store_->requestDbs(), originDevice_, result));
            if (originDevice_ == meta_.device) POSSYNC_TRY(settleOwnQueued(result.requestId));
        }
        return {};
    };
    if (auto w = write(); !w) return fail(w.takeError()).takeError();
    // The next entry of a group commit continues from here.
    meta_.seq = seq;
    meta_.logBytes += frame.size;
    changes_->reset();
    origin_.reset();
    return seq;
}

void WriteTxn::clearRejection() {
    failed_.reset();
    changes_->reset();
    origin_.reset();
}

void WriteTxn::abort() {
    txn_.abort();
}

}  // namespace possync::store
