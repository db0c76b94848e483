// Transactions on a Store: WriteTxn (captures changes), ReadTxn, ApplyTxn (slave apply).
//
// All three are move-only values that end with commit() or abort(); the destructor aborts an
// open transaction. A failed operation inside a WriteTxn/ApplyTxn poisons it: commit() then
// returns that error and nothing is written (LMDB cannot continue a failed write txn).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "lmdb/mdb.h"

#include "store/history.h"
#include "store/meta.h"
#include "store/requests.h"
#include "store/trust_set.h"

namespace possync::wire {
class ChangeModelWriter;
class RequestWriter;
struct Change;
struct ChangeModel;
struct OriginFields;
}  // namespace possync::wire

namespace possync::store {

// The rule every transaction applies to a key: not empty, at most LMDB's limit (`maxKey`).
// InvalidArgument or TooLarge, with the sizes.
Status checkKeySize(Bytes key, size_t maxKey);

class Store;

// Tables touched by one transaction: name -> dbi and the running digest. A handful of entries,
// searched linearly by string_view: no allocation per record on the apply path.
class TableSet final {
public:
    struct Entry {
        std::string name;
        lmdb::Dbi dbi = 0;
        uint64_t seed = 0;
        uint64_t digest = 0;
        bool dirty = false;
        bool watched = false;
    };
    // Finds or opens `name` (creating it when `create`).
    Result<Entry*> get(lmdb::Txn& txn, lmdb::Dbi digestDbi, const Meta& meta, std::string_view name,
                       bool create);
    Status flushDigests(lmdb::Txn& txn, lmdb::Dbi digestDbi);

private:
    std::vector<std::unique_ptr<Entry>> entries_;
};

// A precondition on one key (DESIGN.md §9), checked where the write is decided: on the master
// at once; on a slave (watched tables) by the master when it applies the forwarded request.
enum class Require {
    Absent,     // the key does not exist
    Present,    // the key exists
    ValueHash,  // the key exists and valueHash(value) == hash (requests.h)
};

// What a commit did: a master (or a slave's local tables) applies at once and logs `seq` (0 when
// nothing watched changed); a slave's writes to watched tables become `request` in its outbox
// (0 when there were none).
struct CommitInfo {
    uint64_t seq = 0;
    uint64_t request = 0;
};

// The single write entry point (Store::beginWrite). On a master every operation applies in
// this transaction and watched tables are captured into the log entry. On a slave (DESIGN.md
// §9) operations on the tables its master watches are not applied here: they are collected
// into one WriteRequest that commit() appends to possync.outbox, for the daemon to forward;
// operations on its other (local) tables apply here, as on a master. get() reads this board's
// committed data and this transaction's own local writes, never its queued requests.
class WriteTxn final {
public:
    WriteTxn(WriteTxn&&) noexcept;
    WriteTxn& operator=(WriteTxn&&) noexcept;
    ~WriteTxn();

    Status put(std::string_view table, Bytes key, Bytes value);
    // Returns false when the key was absent (nothing changes, nothing is logged).
    Result<bool> del(std::string_view table, Bytes key);
    // Removes every entry of the table (the table itself stays).
    Status clear(std::string_view table);
    // Adds `delta` to the key's 8-byte big-endian signed integer (absent: 0). A value of
    // another size, or an overflow, fails the transaction.
    Status add(std::string_view table, Bytes key, int64_t delta);
    // A precondition: when it does not hold, the transaction fails (Errc::Rejected, naming the
    // table and key) and nothing of it is written.
    Status require(std::string_view table, Bytes key, Require what, uint64_t hash = 0);
    // Reads the transaction's own view (uncommitted writes included). The bytes stay valid until
    // the next write in this transaction.
    Result<std::optional<Bytes>> get(std::string_view table, Bytes key);

    // The store's trust set (trust_set.h; DESIGN.md §11), master only: adds or replaces a member
    // / removes one (false when absent: nothing changes, nothing is logged). Each change is
    // captured like a watched table's, as a PUT/DEL on possync.trust, so it commits a log entry
    // (a new seq) and reaches every slave. It touches no table digest. On a slave both are
    // Errc::Refused (the set is the master's; a slave's copy only follows it); a member that
    // cannot be encoded (name too long, not UTF-8) is InvalidArgument. Neither refusal poisons
    // the transaction (nothing was written); an LMDB error does. The ordinary put/del/clear/get
    // refuse possync.trust as any reserved name.
    Status putTrust(const TrustMember& member);
    Result<bool> delTrust(const TrustKey& key);

    // Commits data, digests and (when a watched table changed) the log entry and the new head
    // seq in ONE LMDB transaction. Returns the new seq, or 0 when nothing watched changed.
    Result<uint64_t> commit();
    // commit(), telling also the request id a slave queued.
    Result<CommitInfo> commitWrite();
    void abort();
    // For a transaction committed on a worker thread: commit() calls no in-process listener
    // (they belong to the loop's thread); it touches DIR/possync.notify instead, which the
    // daemon's loop watches as it does for other processes' commits.
    void setQuiet() { quiet_ = true; }
    // Whether this transaction forwards watched-table writes (a slave's).
    bool forwarding() const { return request_ != nullptr; }

    const Meta& meta() const { return meta_; }
    // Changes captured so far (watched tables only).
    size_t capturedChanges() const;

private:
    friend class Store;
    WriteTxn(Store* store, lmdb::Txn txn, Meta meta);
    Status fail(Error e);
    Status checkKey(Bytes key) const;
    Status checkCapture();
    // Slave: a write to a watched table goes into the request (true) instead of applying.
    bool forwards(std::string_view table) const { return request_ && meta_.isWatched(table); }
    Result<CommitInfo> commitRequest();
    // A promoted board applying its own queued request (Store::drainOwnOutbox): the request
    // leaves the outbox in the transaction that records its outcome (failover.cc).
    Status settleOwnQueued(uint64_t requestId);
    // Master, Store::applyRequests: the log entry carries this origin (written even with no
    // changes) and the outcome is recorded in possync.clients/possync.results; `quiet`: no
    // in-process listeners are called (the commit runs on a worker thread).
    void setOrigin(const wire::OriginFields& origin, bool quiet);
    // Master, group commit (Store::applyRequests): writes the changes captured so far and the
    // origin as the next log entry in this still open transaction, and starts a new one: each
    // request of a batch gets its own seq, yet the batch commits (and syncs) once. Returns the
    // entry's seq, or 0 when there was nothing to log. Errc::TooLarge before anything of the
    // entry is written when its model exceeds maxChangeModelBytes.
    Result<uint64_t> logEntry();
    // Data writes this transaction made (put/del/clear reaching LMDB), so far: a request that
    // failed without adding to it wrote nothing that would have to be undone.
    uint64_t writes() const { return writes_; }
    // Forgets a failed precondition (Errc::Rejected, with writes() unchanged since the request
    // began): the transaction goes on with the next request of the batch.
    void clearRejection();

    Store* store_ = nullptr;
    lmdb::Txn txn_;
    Meta meta_;
    TableSet tables_;
    std::unique_ptr<wire::ChangeModelWriter> changes_;
    std::unique_ptr<wire::RequestWriter> request_;  // slave only
    std::unique_ptr<wire::OriginFields> origin_;    // a forwarded request being applied (master)
    std::string originDevice_, originReason_;       // what origin_'s views point at
    bool quiet_ = false;
    uint64_t writes_ = 0;
    std::optional<Error> failed_;
};

class ReadTxn final {
public:
    ReadTxn(ReadTxn&&) noexcept = default;
    ReadTxn& operator=(ReadTxn&&) noexcept = default;
    ~ReadTxn();

    const Meta& meta() const { return meta_; }
    // The value, or nullopt when the key is absent. Errc::NotFound when the table does not exist.
    Result<std::optional<Bytes>> get(std::string_view table, Bytes key);
    // Entries with keys starting with `prefix`, in key order, at most `limit` (0 = all);
    // fn returns false to stop early.
    Status scan(std::string_view table, Bytes prefix, size_t limit,
                const std::function<bool(Bytes key, Bytes value)>& fn);
    // Entries with keys >= `from`, in key order, until fn returns false.
    Status scanFrom(std::string_view table, Bytes from,
                    const std::function<bool(Bytes key, Bytes value)>& fn);
    // scanFrom and entries for the reserved tables a FULL sync carries (possync.clients,
    // possync.results, possync.trust: isReplicatedTable); NotFound on a directory made before
    // them.
    Status scanReplicated(std::string_view table, Bytes from,
                          const std::function<bool(Bytes key, Bytes value)>& fn);
    Result<uint64_t> entriesReplicated(std::string_view table);
    // Business table names (reserved possync.* excluded), sorted.
    Result<std::vector<std::string>> tableNames();
    // The store's trust set in key order / one member (nullopt: not a member). A directory made
    // before possync.trust (a read-only open) has an empty set. A record that does not decode is
    // Errc::Corrupt naming the table.
    Result<std::vector<TrustMember>> trustMembers();
    Result<std::optional<TrustMember>> trustMember(const TrustKey& key);
    Result<uint64_t> entries(std::string_view table);
    Result<uint64_t> digest(std::string_view table);
    // The combined digest of the watched tables (XOR of their digests; `possync digest`).
    Result<uint64_t> watchedDigest();
    lmdb::Txn& raw() { return txn_; }
    void end();

private:
    friend class Store;
    ReadTxn(Store* store, lmdb::Txn txn, Meta meta)
        : store_(store), txn_(std::move(txn)), meta_(std::move(meta)) {}
    Result<lmdb::Dbi> dbi(std::string_view table);

    Store* store_ = nullptr;
    lmdb::Txn txn_;
    Meta meta_;
};

class ApplyTxn final {
public:
    ApplyTxn(ApplyTxn&&) noexcept = default;
    ApplyTxn& operator=(ApplyTxn&&) noexcept = default;
    ~ApplyTxn() = default;

    // Applies every change of an INCREMENTAL model in order. Keys and values go from the
    // model's buffer straight into LMDB (no copy, no per-record allocation). A change naming a
    // reserved or invalid table, or an oversize key, fails the whole transaction; but for
    // possync.trust (the master's trust set): a PUT whose record decodes, or a DEL, is written
    // to this board's copy (no digest: not a business table); a malformed record is
    // Errc::Corrupt, a CLEAR or a key of the wrong size Errc::Protocol, and fail it.
    // The model is appended to this board's possync.log under its seq (a promoted slave serves
    // other slaves from it): `frame` is the verified Frame the model came in (a Fragment-joined
    // one included), kept as received, old generation in its header and all; empty: the model
    // is encoded again. A model at or below the last logged seq (a replay) is not logged again.
    Status apply(const wire::ChangeModel* model, Bytes frame = {});
    // Starts a FULL data set: empties `tables` (this transaction only; readers keep the old data
    // until commit) and records them as this slave's watched tables (the master's listening
    // configuration, so `digest` compares the same tables on both boards).
    Status beginFull(const std::vector<std::string>& tables);
    // Applies a FULL chunk (PUTs in key order per table: appended where possible). PUTs to
    // possync.clients / possync.results replace this board's copies (beginFull emptied them,
    // but for this board's own outcomes, which the master's overwrite); PUTs to possync.trust
    // rebuild the trust set beginFull emptied (each record must decode: Errc::Corrupt).
    Status applyFullChunk(const wire::ChangeModel* model);
    // The master's lineage (history records, oldest first; its term is the last one's), when
    // the sync layer knows it: written with the position. Without it a new generation is
    // recorded as a child of the one held (INCREMENTAL across a promotion) or a root (FULL).
    void setLineage(std::vector<HistoryRecord> history) { lineage_ = std::move(history); }
    // The position written with this transaction (and synced = 1).
    Status setPosition(uint64_t generation, uint64_t seq);
    // Settles one of this board's own requests whose outcome arrived without a change model to
    // apply here (a rejection before logging, or a change this board already holds: e.g. after
    // a FULL sync): removes it from the outbox and records the outcome.
    Status settleOwnRequest(const RequestResult& result);
    Status commit();
    void abort() {
        txn_.abort();
        fullLock_.reset();
    }
    bool isOpen() const { return txn_.isOpen(); }
    const Meta& meta() const { return meta_; }
    uint64_t changesApplied() const { return applied_; }
    // This board's own requests settled in this transaction (their ids), so far.
    const std::vector<uint64_t>& ownSettled() const { return ownSettled_; }

private:
    friend class Store;
    ApplyTxn(Store* store, lmdb::Txn txn, Meta meta)
        : store_(store),
          txn_(std::move(txn)),
          meta_(std::move(meta)),
          startGeneration_(meta_.generation),
          startSeq_(meta_.seq),
          startSynced_(meta_.synced),
          lastLogged_(meta_.seq),
          curGeneration_(meta_.generation) {}
    Status fail(Error e);
    // slave_log.cc: the slave's log, the replicated reserved tables, the lineage.
    Status logEntry(const wire::ChangeModel* model, Bytes frame);
    Status putReplicated(std::string_view table, Bytes key, Bytes value);
    // One INCREMENTAL change on possync.trust (apply()).
    Status applyTrust(const wire::Change* c);
    Status clearReplicated();
    Status commitLog();
    Status trimLog();  // to Store::slaveTrim(), oldest first
    Status putOne(TableSet::Entry& t, Bytes key, Bytes value, bool append);

    Store* store_ = nullptr;
    lmdb::Txn txn_;
    Meta meta_;
    TableSet tables_;
    uint64_t applied_ = 0;
    bool positionSet_ = false;
    bool watchedSet_ = false;
    bool outboxChanged_ = false;
    std::vector<uint64_t> ownSettled_;
    // A FULL sync holds DIR/possync.full (flock) while its transaction is open: a writer on this
    // slave is then refused at once (Errc::Busy) instead of waiting for LMDB's writer lock.
    std::shared_ptr<void> fullLock_;
    std::optional<Error> failed_;
    uint64_t startGeneration_ = 0, startSeq_ = 0;
    bool startSynced_ = false;
    uint64_t lastLogged_ = 0;  // the log's last seq (entries at or below it are not logged again)
    bool logChanged_ = false;
    bool fullStarted_ = false;
    uint64_t curGeneration_ = 0;            // the generation of the last model applied
    std::vector<HistoryRecord> crossings_;  // generations entered in this transaction
    std::optional<std::vector<HistoryRecord>> lineage_;
    Status applyOrigin(const wire::ChangeModel* model);
    Status settleOwn(const RequestResult& result, bool recordResult);
};

}  // namespace possync::store
