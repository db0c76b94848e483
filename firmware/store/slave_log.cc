// ApplyTxn: what a slave keeps besides the data (DESIGN.md §10), so that it can be promoted:
// the master's log entries as received, the replicated possync.clients / possync.results /
// possync.trust of a FULL sync, and the generation lineage of what it holds.
#include <cstring>

#include "store/store.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::store {

Status ApplyTxn::logEntry(const wire::ChangeModel* model, Bytes frame) {
    const uint64_t seq = model->last_seq();
    // A replay (the log after a FULL's chunks, a model sent again) is logged once.
    if (seq <= lastLogged_) return {};
    if (!fullStarted_ && startSynced_ && model->generation() != curGeneration_ && curGeneration_ != 0) {
        // INCREMENTAL across a promotion: the new generation's first entry follows the fork.
        crossings_.push_back(HistoryRecord{model->generation(), curGeneration_, model->first_seq() - 1, 0});
    }
    curGeneration_ = model->generation();
    std::optional<wire::ChangeModelWriter> again;
    if (frame.size == 0) {
        // No received bytes given (tests, tools): the same model encoded again.
        again.emplace();
        if (model->changes())
            for (const wire::Change* c : *model->changes())
                again->add(wire::tableOf(c), c->op(), wire::keyOf(c), wire::valueOf(c));
        std::optional<wire::OriginFields> origin;
        if (const wire::Origin* o = model->origin())
            origin = wire::OriginFields{wire::textOf(o->device_id()), o->request_id(), o->status(),
                                        wire::textOf(o->reason())};
        frame = again->finishIncremental(model->generation(), model->first_seq(), seq,
                                         origin ? &*origin : nullptr);
    }
    uint8_t key[8];
    putBe64(key, seq);
    auto r = txn_.put(store_->logDbi(), Bytes(key, 8), frame, lmdb::Txn::putAppend);
    // Not after the log's last key (a directory whose log was not emptied): an ordinary put.
    if (!r && r.error().code == Errc::Exists) r = txn_.put(store_->logDbi(), Bytes(key, 8), frame);
    if (!r) return fail(r.takeError());
    meta_.logBytes += frame.size;
    lastLogged_ = seq;
    logChanged_ = true;
    return {};
}

Status ApplyTxn::putReplicated(std::string_view table, Bytes key, Bytes value) {
    auto dbi = store_->replicatedDbi(table);
    if (!dbi) return {};
    if (key.size == 0 || key.size > store_->maxKeySize())
        return fail(makeError(Errc::Protocol, "FULL chunk: a " + std::string(table) + " key of " +
                                                  std::to_string(key.size) + " bytes"));
    // A member that does not decode would make every later read of the set fail: refuse the FULL.
    if (table == kTrustDb)
        if (auto m = decodeTrustMember(key, value); !m) return fail(m.takeError());
    auto r = txn_.put(*dbi, key, value);
    if (!r) return fail(r.takeError());
    return {};
}

Status ApplyTxn::clearReplicated() {
    // The FULL replaces the log (it starts at the snapshot's seq) ...
    if (auto r = txn_.clear(store_->logDbi()); !r) return fail(r.takeError());
    meta_.logBytes = 0;
    lastLogged_ = 0;
    logChanged_ = true;
    fullStarted_ = true;
    crossings_.clear();
    // ... and the trust set, whole: the master's is authoritative (a member it removed while
    // this board was away must not stay trusted here) ...
    if (store_->hasTrustDb())
        if (auto r = txn_.clear(store_->trustDbi()); !r) return fail(r.takeError());
    if (!store_->hasRequestDbs()) return {};
    // ... and the records of the writing boards, but for this board's own outcomes: a rejection
    // the master never logged is only here (the master's records, sent next, overwrite the rest).
    const RequestDbs& dbs = store_->requestDbs();
    if (auto r = txn_.clear(dbs.clients); !r) return fail(r.takeError());
    std::string own = meta_.device + '\0';
    std::vector<std::string> drop;
    {
        auto cur = lmdb::Cursor::open(txn_, dbs.results);
        if (!cur) return fail(cur.takeError());
        Bytes k, v;
        for (auto r = cur->first(k, v);; r = cur->next(k, v)) {
            if (!r) return fail(r.takeError());
            if (!*r) break;
            if (k.size < own.size() || std::memcmp(k.data, own.data(), own.size()) != 0)
                drop.push_back(k.str());
        }
    }
    for (const auto& k : drop)
        if (auto r = txn_.del(dbs.results, Bytes(k)); !r) return fail(r.takeError());
    return {};
}

Status ApplyTxn::trimLog() {
    const TrimLimits& limits = store_->slaveTrim();
    auto count = txn_.entries(store_->logDbi());
    if (!count) return count.takeError();
    uint64_t n = *count;
    if (n <= limits.maxEntries && meta_.logBytes <= limits.maxBytes) return {};
    auto cur = lmdb::Cursor::open(txn_, store_->logDbi());
    if (!cur) return cur.takeError();
    Bytes k, v;
    // The newest entry stays (the position's own), whatever the limits.
    while (n > 1 && (n > limits.maxEntries || meta_.logBytes > limits.maxBytes)) {
        auto r = cur->first(k, v);
        if (!r) return r.takeError();
        if (!*r) break;
        uint64_t size = v.size;
        POSSYNC_TRY(cur->del());
        --n;
        meta_.logBytes = meta_.logBytes > size ? meta_.logBytes - size : 0;
    }
    return {};
}

Status ApplyTxn::commitLog() {
    if (logChanged_) {
        POSSYNC_TRY(trimLog());
        POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "log_bytes", meta_.logBytes));
    }
    if (!positionSet_) return {};
    std::vector<HistoryRecord> history = meta_.history;
    uint64_t term = std::max(meta_.term, meta_.highestTermSeen);
    if (lineage_ && !lineage_->empty()) {
        history.clear();
        for (const auto& r : *lineage_) pushHistory(history, r);
        term = history.back().term;
    } else if (history.empty() || history.back().generation != meta_.generation) {
        if (fullStarted_ || !startSynced_) {
            // The data of a generation whose lineage the master did not tell: its own root.
            history = {HistoryRecord{meta_.generation, 0, 0, term}};
        } else {
            bool reached = false;
            for (auto r : crossings_) {
                r.term = term;
                pushHistory(history, r);
                reached = r.generation == meta_.generation;
            }
            if (!reached)
                pushHistory(history, HistoryRecord{meta_.generation, startGeneration_, startSeq_, term});
        }
    } else {
        return {};
    }
    POSSYNC_TRY(writeMetaHistory(txn_, store_->metaDbi(), history));
    POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "term", term));
    if (term > meta_.highestTermSeen)
        POSSYNC_TRY(writeMetaU64(txn_, store_->metaDbi(), "highest_term_seen", term));
    meta_.history = std::move(history);
    meta_.term = term;
    return {};
}

Status ReadTxn::scanReplicated(std::string_view table, Bytes from,
                               const std::function<bool(Bytes, Bytes)>& fn) {
    auto dbi = store_->replicatedDbi(table);
    if (!dbi) return makeError(Errc::NotFound, "no replicated table " + std::string(table));
    auto cur = lmdb::Cursor::open(txn_, *dbi);
    if (!cur) return cur.takeError();
    Bytes k, v;
    for (auto r = from.size ? cur->seek(from, k, v) : cur->first(k, v);; r = cur->next(k, v)) {
        if (!r) return r.takeError();
        if (!*r || !fn(k, v)) break;
    }
    return {};
}

Result<uint64_t> ReadTxn::entriesReplicated(std::string_view table) {
    auto dbi = store_->replicatedDbi(table);
    if (!dbi) return makeError(Errc::NotFound, "no replicated table " + std::string(table));
    return txn_.entries(*dbi);
}

}  // namespace possync::store
