// ApplyTxn: a slave applying the master's change models and FULL chunks in one write transaction.
#include "store/digest.h"
#include "store/store.h"
#include "store/txn.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::store {

// --- ApplyTxn ---------------------------------------------------------------------------

Status ApplyTxn::fail(Error e) {
    if (!failed_) failed_ = e;
    return e;
}

Status ApplyTxn::putOne(TableSet::Entry& e, Bytes key, Bytes value, bool append) {
    POSSYNC_TRY(checkKeySize(key, store_->maxKeySize()));
    if (append) {
        auto r = txn_.put(e.dbi, key, value, lmdb::Txn::putAppend);
        if (r) {
            e.digest ^= entryHash(e.seed, key, value);
            e.dirty = true;
            return {};
        }
        // Not after the last key (a replayed change, or a table not emptied): ordinary put.
        if (r.error().code != Errc::Exists) return r;
    }
    auto old = txn_.get(e.dbi, key);
    if (!old) return old.takeError();
    if (*old) e.digest ^= entryHash(e.seed, key, **old);
    POSSYNC_TRY(txn_.put(e.dbi, key, value));
    e.digest ^= entryHash(e.seed, key, value);
    e.dirty = true;
    return {};
}

Status ApplyTxn::apply(const wire::ChangeModel* model, Bytes frame) {
    if (failed_) return *failed_;
    if (!model) return {};
    if (auto l = logEntry(model, frame); !l) return l;
    if (!model->changes()) return model->origin() ? applyOrigin(model) : Status{};
    for (const wire::Change* c : *model->changes()) {
        if (wire::tableOf(c) == kTrustDb) {
            if (auto r = applyTrust(c); !r) return r;
            ++applied_;
            continue;
        }
        auto t = tables_.get(txn_, store_->digestDbi(), meta_, wire::tableOf(c), true);
        if (!t) return fail(t.takeError());
        TableSet::Entry& e = **t;
        Bytes key = wire::keyOf(c);
        switch (c->op()) {
            case wire::Op::PUT: {
                auto r = putOne(e, key, wire::valueOf(c), false);
                if (!r) return fail(r.takeError());
                break;
            }
            case wire::Op::DEL: {
                auto ck = checkKeySize(key, store_->maxKeySize());
                if (!ck) return fail(ck.takeError());
                auto old = txn_.get(e.dbi, key);
                if (!old) return fail(old.takeError());
                if (!*old) break;
                e.digest ^= entryHash(e.seed, key, **old);
                auto r = txn_.del(e.dbi, key);
                if (!r) return fail(r.takeError());
                e.dirty = true;
                break;
            }
            case wire::Op::CLEAR: {
                auto r = txn_.clear(e.dbi);
                if (!r) return fail(r.takeError());
                e.digest = 0;
                e.dirty = true;
                break;
            }
            default:
                return fail(
                    makeError(Errc::Protocol, "change with unknown op " + std::to_string(int(c->op()))));
        }
        ++applied_;
    }
    if (model->origin()) return applyOrigin(model);
    return {};
}

Status ApplyTxn::applyTrust(const wire::Change* c) {
    if (!store_->hasTrustDb())
        return fail(makeError(Errc::Refused, store_->dir() + " has no " + std::string(kTrustDb)));
    Bytes key = wire::keyOf(c);
    switch (c->op()) {
        case wire::Op::PUT: {
            auto m = decodeTrustMember(key, wire::valueOf(c));
            if (!m) return fail(m.takeError());
            if (auto r = txn_.put(store_->trustDbi(), key, wire::valueOf(c)); !r) return fail(r.takeError());
            return {};
        }
        case wire::Op::DEL: {
            if (key.size != kTrustKeyBytes)
                return fail(makeError(Errc::Protocol, "DEL on " + std::string(kTrustDb) + " with a key of " +
                                                          std::to_string(key.size) + " bytes"));
            if (auto r = txn_.del(store_->trustDbi(), key); !r) return fail(r.takeError());
            return {};
        }
        case wire::Op::CLEAR:
            // The master never clears the set in one change (members go one by one, each logged).
            return fail(
                makeError(Errc::Protocol, "CLEAR of " + std::string(kTrustDb) + " in a change model"));
        default:
            return fail(makeError(Errc::Protocol, "change with unknown op " + std::to_string(int(c->op())) +
                                                      " on " + std::string(kTrustDb)));
    }
}

Status ApplyTxn::applyOrigin(const wire::ChangeModel* model) {
    const wire::Origin* o = model->origin();
    std::string_view device = wire::textOf(o->device_id());
    RequestResult r{o->request_id(), o->status() == wire::WriteStatus::REJECTED, model->last_seq(),
                    std::string(wire::textOf(o->reason()))};
    auto rec = recordOutcome(txn_, store_->requestDbs(), device, r);
    if (!rec) return fail(rec.takeError());
    if (device == meta_.device) return settleOwn(r, false);
    return {};
}

Status ApplyTxn::settleOwnRequest(const RequestResult& result) {
    if (failed_) return *failed_;
    return settleOwn(result, true);
}

Status ApplyTxn::settleOwn(const RequestResult& result, bool recordResult) {
    auto dbs = store_->requestDbs();
    uint8_t key[8];
    putBe64(key, result.requestId);
    auto old = txn_.get(dbs.outbox, Bytes(key, 8));
    if (!old) return fail(old.takeError());
    if (*old) {
        uint64_t size = (*old)->size;
        auto d = txn_.del(dbs.outbox, Bytes(key, 8));
        if (!d) return fail(d.takeError());
        meta_.outboxCount = meta_.outboxCount ? meta_.outboxCount - 1 : 0;
        meta_.outboxBytes = meta_.outboxBytes >= size ? meta_.outboxBytes - size : 0;
        outboxChanged_ = true;
    }
    if (recordResult) {
        auto r = putResult(txn_, dbs, meta_.device, result);
        if (!r) return fail(r.takeError());
    }
    if (result.rejected) {
        meta_.lastRejection = "request " + std::to_string(result.requestId) + ": " + result.reason;
        outboxChanged_ = true;
    }
    ownSettled_.push_back(result.requestId);
    return {};
}

Status ApplyTxn::beginFull(const std::vector<std::string>& tables) {
    if (failed_) return *failed_;
    if (!fullLock_) {
        auto lock = store_->lockFull();
        if (!lock) return fail(lock.takeError());
        fullLock_ = std::move(*lock);
    }
    for (const auto& name : tables) {
        auto t = tables_.get(txn_, store_->digestDbi(), meta_, name, true);
        if (!t) return fail(t.takeError());
        auto r = txn_.clear((*t)->dbi);
        if (!r) return fail(r.takeError());
        (*t)->digest = 0;
        (*t)->dirty = true;
    }
    auto sorted = parseTableList(joinTableList(tables));
    if (!sorted) return fail(sorted.takeError());
    meta_.watched = std::move(*sorted);
    watchedSet_ = true;
    return clearReplicated();
}

Status ApplyTxn::applyFullChunk(const wire::ChangeModel* model) {
    if (failed_) return *failed_;
    if (!model || !model->changes()) return {};
    for (const wire::Change* c : *model->changes()) {
        if (c->op() != wire::Op::PUT)
            return fail(makeError(Errc::Protocol, "FULL chunk holds a change that is not a PUT"));
        if (isReplicatedTable(wire::tableOf(c))) {
            if (auto r = putReplicated(wire::tableOf(c), wire::keyOf(c), wire::valueOf(c)); !r) return r;
            continue;
        }
        auto t = tables_.get(txn_, store_->digestDbi(), meta_, wire::tableOf(c), true);
        if (!t) return fail(t.takeError());
        auto r = putOne(**t, wire::keyOf(c), wire::valueOf(c), true);
        if (!r) return fail(r.takeError());
        ++applied_;
    }
    return {};
}

Status ApplyTxn::setPosition(uint64_t generation, uint64_t seq) {
    meta_.generation = generation;
    meta_.seq = seq;
    meta_.synced = true;
    positionSet_ = true;
    return {};
}

Status ApplyTxn::commit() {
    if (!txn_.isOpen()) return makeError(Errc::Closed, "transaction already ended");
    if (failed_) {
        txn_.abort();
        return *failed_;
    }
    auto doCommit = [&]() -> Status {
        POSSYNC_TRY(tables_.flushDigests(txn_, store_->digestDbi()));
        if (positionSet_) {
            POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "generation", meta_.generation));
            POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "seq", meta_.seq));
            POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "synced", 1));
        }
        POSSYNC_TRY(commitLog());
        if (watchedSet_) {
            std::string list = joinTableList(meta_.watched);
            POSSYNC_TRY(txn_.put(store_->metaDbi(), Bytes("watched"), Bytes(list)));
        }
        if (outboxChanged_) {
            POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "outbox_count", meta_.outboxCount));
            POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "outbox_bytes", meta_.outboxBytes));
            POSSYNC_TRY(txn_.put(store_->metaDbi(), Bytes("last_rejection"), Bytes(meta_.lastRejection)));
        }
        return txn_.commit();
    };
    auto r = doCommit();
    txn_.abort();
    fullLock_.reset();
    if (!r) return r;
    store_->committed(meta_.seq, !ownSettled_.empty());
    return {};
}

}  // namespace possync::store
