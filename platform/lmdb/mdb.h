// Thin C++ over LMDB: environment, transactions, named databases, cursors, error mapping.
//
// Nothing here knows about POS data. firmware/ uses these types instead of <lmdb.h>; MDB
// handles appear only as opaque pointers. Every error is an Error whose message names the
// operation and LMDB's reason; MDB_MAP_FULL maps to Errc::MapFull, MDB_BAD_VALSIZE to
// Errc::TooLarge, MDB_INVALID/MDB_VERSION_MISMATCH to Errc::Corrupt/Version.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

struct MDB_env;
struct MDB_txn;
struct MDB_cursor;

namespace possync::lmdb {

using Dbi = unsigned int;  // MDB_dbi

struct EnvOptions {
    size_t mapSize = 0;     // bytes; 0 keeps the size stored in the environment (or LMDB's default)
    unsigned maxDbs = 256;  // named databases (tables + possync.*)
    bool readOnly = false;
    bool create = true;   // create the directory and environment when missing
    bool noSync = false;  // tests and benchmarks only: commits are not fsynced
    // MDB_WRITEMAP: a write transaction's dirty pages live in the file mapping (page cache the
    // kernel can write back) instead of heap copies, so a huge transaction does not need
    // memory for all its pages. data.mdb is then sized to the map (a sparse file).
    bool writeMap = false;
};

// Maps an LMDB return code to an Error; `what` names the operation ("open data directory").
Error fromMdb(int rc, std::string_view what);

// Database handles (MDB_dbi). LMDB lets a handle be opened only by a transaction that no other
// transaction of the process runs beside (a reader opening one while the FULL sync's write
// transaction is open takes the slot the writer's new table uses: MDB_BAD_DBI), and a handle a
// transaction opened is usable by others only after that transaction commits. So the Env keeps
// the handles of the process: a transaction takes a handle from this cache when it was
// published before the transaction began, opens a missing one only while it is the process's
// only open transaction, and publishes what it opened when it commits (an abort forgets it).
class Env final {
public:
    // Opens (and with options.create, creates) the environment in directory `dir`.
    static Result<std::unique_ptr<Env>> open(const std::string& dir, const EnvOptions& options);
    ~Env();
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;

    MDB_env* raw() const { return env_; }
    const std::string& dir() const { return dir_; }
    size_t maxKeySize() const;
    size_t mapSize() const;
    // Grows the map (only while this process has no transaction open).
    Status setMapSize(size_t bytes);
    // Forces a sync to disk (used after noSync batches).
    Status sync();
    // Largest map size this process can address (32-bit boards are limited).
    static size_t maxMapSize();

private:
    friend class Txn;
    struct Handle {
        Dbi dbi;
        uint64_t epoch;  // dbiEpoch_ when published: usable by transactions begun at or after it
    };
    Env(MDB_env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
    MDB_env* env_;
    std::string dir_;
    std::mutex mutex_;  // guards the members below (transactions may run on several threads)
    std::map<std::string, Handle, std::less<>> handles_;
    uint64_t dbiEpoch_ = 0;
    int openTxns_ = 0;  // open transactions of this process on this environment
};

// A transaction. Movable; the destructor aborts a transaction that is still open.
class Txn final {
public:
    static Result<Txn> begin(Env& env, bool write);
    Txn() = default;
    Txn(Txn&& o) noexcept
        : txn_(o.txn_), write_(o.write_), env_(o.env_), epoch_(o.epoch_), opened_(std::move(o.opened_)) {
        o.txn_ = nullptr;
    }
    Txn& operator=(Txn&& o) noexcept;
    ~Txn() { abort(); }

    MDB_txn* raw() const { return txn_; }
    bool isOpen() const { return txn_ != nullptr; }
    bool isWrite() const { return write_; }

    // A named database's handle (see Env); with create, makes the database when missing (write
    // transactions only). Errc::NotFound when it does not exist in this transaction's view and
    // create is false; Errc::Busy in the one case LMDB cannot serve: a database this process has
    // no handle for yet, needed while another transaction of this process is open.
    Result<Dbi> open(std::string_view name, bool create);
    // Opens a handle for every named database in the environment (at start-up, alone).
    Status openAll();
    Result<std::optional<Bytes>> get(Dbi dbi, Bytes key) const;
    // flags: putAppend for sorted bulk loads.
    Status put(Dbi dbi, Bytes key, Bytes value, unsigned flags = 0);
    // Reserves `size` bytes for `key` and returns where to write the value.
    Result<uint8_t*> reserve(Dbi dbi, Bytes key, size_t size);
    // Returns false when the key was absent.
    Result<bool> del(Dbi dbi, Bytes key);
    // Empties (keeps) the database.
    Status clear(Dbi dbi);
    Result<uint64_t> entries(Dbi dbi) const;

    Status commit();
    void abort();

    static const unsigned putAppend;    // MDB_APPEND
    static const unsigned noOverwrite;  // MDB_NOOVERWRITE

private:
    Txn(MDB_txn* txn, bool write, Env* env, uint64_t epoch)
        : txn_(txn), write_(write), env_(env), epoch_(epoch) {}
    // Ends the transaction in the Env's count; publishes the handles it opened when committed.
    void ended(bool committed);
    MDB_txn* txn_ = nullptr;
    bool write_ = false;
    Env* env_ = nullptr;
    uint64_t epoch_ = 0;
    std::vector<std::pair<std::string, Dbi>> opened_;  // handles this transaction opened
};

// A cursor over one database, closed with the object (before its transaction ends).
class Cursor final {
public:
    static Result<Cursor> open(const Txn& txn, Dbi dbi);
    Cursor(Cursor&& o) noexcept : cur_(o.cur_) { o.cur_ = nullptr; }
    Cursor& operator=(Cursor&&) = delete;
    ~Cursor();

    // Each positions the cursor and fills key/value; false at the end (or when absent).
    Result<bool> first(Bytes& key, Bytes& value);
    Result<bool> last(Bytes& key, Bytes& value);
    Result<bool> next(Bytes& key, Bytes& value);
    // First entry with key >= `key`.
    Result<bool> seek(Bytes key, Bytes& foundKey, Bytes& value);
    // Deletes the entry under the cursor.
    Status del();

private:
    explicit Cursor(MDB_cursor* cur) : cur_(cur) {}
    Result<bool> get(Bytes& key, Bytes& value, int op);
    MDB_cursor* cur_ = nullptr;
};

// Names of all named databases in the environment (the main DB's keys).
Result<std::vector<std::string>> listDatabases(const Txn& txn);

}  // namespace possync::lmdb
