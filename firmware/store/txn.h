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

#include "store/meta.h"

namespace possync::wire {
class ChangeModelWriter;
struct ChangeModel;
}  // namespace possync::wire

namespace possync::store {

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
    // Reads the transaction's own view (uncommitted writes included). The bytes stay valid until
    // the next write in this transaction.
    Result<std::optional<Bytes>> get(std::string_view table, Bytes key);

    // Commits data, digests and (when a watched table changed) the log entry and the new head
    // seq in ONE LMDB transaction. Returns the new seq, or 0 when nothing watched changed.
    Result<uint64_t> commit();
    void abort();

    const Meta& meta() const { return meta_; }
    // Changes captured so far (watched tables only).
    size_t capturedChanges() const;

private:
    friend class Store;
    WriteTxn(Store* store, lmdb::Txn txn, Meta meta);
    Status fail(Error e);
    Status checkKey(Bytes key) const;
    Status checkCapture();

    Store* store_ = nullptr;
    lmdb::Txn txn_;
    Meta meta_;
    TableSet tables_;
    std::unique_ptr<wire::ChangeModelWriter> changes_;
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
    // Business table names (reserved possync.* excluded), sorted.
    Result<std::vector<std::string>> tableNames();
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
    // reserved or invalid table, or an oversize key, fails the whole transaction.
    Status apply(const wire::ChangeModel* model);
    // Starts a FULL data set: empties `tables` (this transaction only; readers keep the old data
    // until commit) and records them as this slave's watched tables (the master's listening
    // configuration, so `digest` compares the same tables on both boards).
    Status beginFull(const std::vector<std::string>& tables);
    // Applies a FULL chunk (PUTs in key order per table: appended where possible).
    Status applyFullChunk(const wire::ChangeModel* model);
    // The position written with this transaction (and synced = 1).
    Status setPosition(uint64_t generation, uint64_t seq);
    Status commit();
    void abort() { txn_.abort(); }
    bool isOpen() const { return txn_.isOpen(); }
    const Meta& meta() const { return meta_; }
    uint64_t changesApplied() const { return applied_; }

private:
    friend class Store;
    ApplyTxn(Store* store, lmdb::Txn txn, Meta meta)
        : store_(store), txn_(std::move(txn)), meta_(std::move(meta)) {}
    Status fail(Error e);
    Status putOne(TableSet::Entry& t, Bytes key, Bytes value, bool append);

    Store* store_ = nullptr;
    lmdb::Txn txn_;
    Meta meta_;
    TableSet tables_;
    uint64_t applied_ = 0;
    bool positionSet_ = false;
    bool watchedSet_ = false;
    std::optional<Error> failed_;
};

}  // namespace possync::store
