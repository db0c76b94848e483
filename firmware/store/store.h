// The board's data directory: business tables, change capture, the change log, positions.
//
// One Store per process and directory. Everything that writes business data goes through
// Store::beginWrite() (the single write entry point: the daemon, the possync tool and POS
// applications through possync.h), so change capture cannot be bypassed: every committed
// write transaction that touched a watched table appends exactly one entry to possync.log in
// the same LMDB transaction. The slave's sync engine writes through beginApply() instead,
// which does not capture (the changes are the master's).
//
// Cross-process commit notification: after each commit a writer touches DIR/possync.notify
// (utimensat); a daemon watching that file wakes within milliseconds and reads the log from its
// own position, so a lost wake-up can delay but never lose a change.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
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
#include "store/txn.h"
#include "wire/fragment.h"

namespace possync::store {

struct TrimLimits {
    uint64_t maxEntries = 100000;    // trim down to this many entries ...
    uint64_t maxBytes = 256u << 20;  // ... and this many bytes, unless pinned
    // Pins are honoured up to these hard limits; past them the oldest entries go anyway and a
    // slave pinned there gets a FULL sync on its next request.
    uint64_t hardMaxEntries = 1000000;
    uint64_t hardMaxBytes = 1024u << 20;
};

struct StoreOptions {
    // LMDB map size in bytes; 0 = default (1 GiB, 512 MiB on 32-bit boards). A larger size
    // takes effect at the next open; the size stored in data.mdb never shrinks.
    size_t mapSize = 0;
    bool create = true;     // create and initialise a missing directory
    bool readOnly = false;  // open without write access (read transactions only)
    bool noSync = false;    // tests/benchmarks: commits are not fsynced
    // Dirty pages of write transactions in the file mapping, not the heap (see lmdb::EnvOptions).
    // A slave's FULL sync is one transaction as large as the data set: with this its memory
    // stays bounded by what the kernel keeps in the page cache.
    bool writeMap = false;
    std::string deviceId;  // used when initialising; empty = random
    // Largest change model (one transaction's log entry) in bytes: what every peer can take
    // (wire/fragment.h). Not tied to --max-frame: larger models travel as Fragments.
    size_t maxChangeModelBytes = wire::kMaxMessageBytes;
    // A slave trims the log it keeps (ApplyTxn) to these limits in each apply transaction (no
    // pins: nobody reads a slave's log until it is promoted). The daemon passes its --trim
    // settings; the defaults bound it like a master's.
    TrimLimits slaveTrim;
};

// A slave's outbox (DESIGN.md §9), for the console and the tool.
struct OutboxInfo {
    uint64_t count = 0;
    uint64_t bytes = 0;
    uint64_t maxBytes = 0;
    uint64_t oldestId = 0;
    uint64_t oldestCreatedMs = 0;  // wall clock when the oldest request was committed (0: none)
    uint64_t nextRequest = 1;
    // Requests written against another generation of the master's data than this board now
    // holds: kept and reported, never forwarded (the operator decides).
    uint64_t held = 0;
    std::string lastRejection;

    // How long the oldest request has waited at wall clock `nowMs`. It was stamped with the
    // writer's wall clock: a clock stepped back shows 0, never a wrapped number. nullopt: empty.
    std::optional<uint64_t> oldestAgeMs(uint64_t nowMs) const {
        if (!oldestCreatedMs) return std::nullopt;
        return nowMs > oldestCreatedMs ? nowMs - oldestCreatedMs : 0;
    }
};

// Where one of this board's requests stands (possync_wait).
struct RequestState {
    enum Kind { Pending, Committed, Rejected, Unknown } kind = Unknown;
    uint64_t seq = 0;
    std::string reason;
};

// What the master did with a forwarded request (Store::applyRequest).
struct RequestOutcome {
    RequestResult result;
    bool duplicate = false;  // handled before: this is the stored outcome, nothing was applied now
};

struct LogInfo {
    uint64_t first = 0;  // oldest seq still in the log (0 when empty)
    uint64_t last = 0;   // newest seq in the log (0 when empty)
    uint64_t entries = 0;
    uint64_t bytes = 0;
};

struct TableInfo {
    std::string name;
    uint64_t entries = 0;
    uint64_t digest = 0;
    bool watched = false;
};

// The combined digest of the watched tables as of one committed position (one read
// transaction): what a master announces and a slave compares to detect divergence.
struct WatchedDigest {
    uint64_t generation = 0;
    uint64_t seq = 0;
    uint64_t digest = 0;
    bool synced = false;  // the data holds a position (a slave that never synced: false)
};

// What Store::promote did.
struct PromoteResult {
    uint64_t generation = 0;  // the new generation
    uint64_t parent = 0;      // the generation this board held
    uint64_t forkSeq = 0;     // its seq: the new generation's log continues at forkSeq+1
    uint64_t term = 0;
    uint64_t drained = 0;  // this board's own queued requests applied here
};

struct PromoteOptions {
    // The term at least (e.g. one past a term the sync layer knows of but has not noted).
    uint64_t minTerm = 0;
};

// What Store::exportSince wrote.
struct ExportInfo {
    uint64_t entries = 0;   // log entries (transactions) written
    uint64_t changes = 0;   // changes in them
    uint64_t firstSeq = 0;  // the first seq exported (0: none)
    bool complete = true;   // false: the log no longer held forkSeq+1 (trimmed before it)
};

class Store final {
public:
    static Result<std::unique_ptr<Store>> open(const std::string& dir, const StoreOptions& options);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    const std::string& dir() const { return dir_; }
    const std::string& notifyPath() const { return notifyPath_; }
    lmdb::Env& env() { return *env_; }
    size_t maxKeySize() const { return env_->maxKeySize(); }
    size_t maxChangeModelBytes() const { return options_.maxChangeModelBytes; }
    const TrimLimits& slaveTrim() const { return options_.slaveTrim; }

    // A fresh read of possync.meta.
    Result<Meta> meta();

    // The single write entry point. Refused (Errc::Refused) on a slave's directory.
    Result<WriteTxn> beginWrite();
    Result<ReadTxn> beginRead();
    // Slave side: applies a master's change models without capturing them.
    Result<ApplyTxn> beginApply();

    // Master: applies a slave's forwarded WriteRequest (`frame` is its verified Frame) through
    // the single write entry point, exactly once: a request id this device had handled before
    // gets its stored outcome, nothing applied. Conditions are checked and ADDs computed in the
    // request's transaction; a failed condition commits a log entry with no changes whose origin
    // says REJECTED and why. A malformed request (reserved or unwatched table, bad ADD, another
    // generation) is rejected without a log entry (seq 0) and touches nothing. No in-process
    // listener is called: the daemon runs this on a worker thread (it may wait for the writer
    // lock) and wakes its sessions on the loop. Errors (disk, map full, Busy) are not outcomes:
    // the request may be retried. A batch of one (applyRequests).
    Result<RequestOutcome> applyRequest(const wire::WriteRequest* request);
    // Group commit: the requests in order, each exactly as applyRequest applies it alone (its
    // own log entry and seq, its conditions checked on the data the earlier ones left, its own
    // outcome record; a rejected one applies nothing but the others go on; a duplicate gets its
    // stored outcome), in ONE LMDB transaction: one fsync and one notify touch for the batch.
    // An outcome per request, in order. An error (disk, map full, Busy, Refused) aborts the
    // whole batch: nothing of it is committed and every request may be retried.
    Result<std::vector<RequestOutcome>> applyRequests(std::span<const wire::WriteRequest* const> requests);
    // Slave: the outbox, its requests in id order after `after` (fn returns false to stop; the
    // bytes are valid during the call), this board's request outcomes, and the bound.
    Result<OutboxInfo> outboxInfo();
    Status readOutbox(uint64_t after, const std::function<bool(uint64_t id, Bytes frame)>& fn);
    Result<RequestState> requestState(uint64_t requestId);
    Status setOutboxMaxBytes(uint64_t bytes);
    // Slave: request ids from here on are above `lastHandled` (the master's record of this
    // device, Welcome.last_request): a directory made again with an old device id must not
    // reuse ids the master already handled. Only ever raises the next id.
    Status raiseNextRequest(uint64_t lastHandled);
    // Slave: an apply transaction for a FULL sync, holding DIR/possync.full from before it waits
    // for LMDB's writer lock (writers checking the lock are refused, never queued behind it).
    Result<ApplyTxn> beginFullApply();
    // Master (and, replicated, every board): the writing boards and what was done for them.
    Result<std::vector<ClientRecord>> clients();
    // Every board: the store's trust set (trust_set.h), from one read transaction each. Written
    // on the master only (WriteTxn::putTrust/delTrust). Empty on a read-only open of a
    // directory made before possync.trust existed.
    Result<std::vector<TrustMember>> trustMembers();
    Result<std::optional<TrustMember>> trustMember(const TrustKey& key);

    // Sets the listening configuration. When it changes, commits a log entry with no changes
    // whose seq becomes resync_seq: positions older than that need a FULL sync, so a table
    // that became watched reaches every slave completely.
    Status setWatchedTables(const std::vector<std::string>& tables);
    // Sets the board's role. slave -> master starts a new generation (history cut) and empties
    // the log; master -> slave marks the data as not synced (the first sync is FULL).
    Status setRole(Role role);
    // A slave taking a master's data of another generation: forget the position (not synced).
    Status setDeviceId(const std::string& device);

    // --- Failover (DESIGN.md §10; failover.cc) ---
    // Slave: becomes the master of a new generation in ONE write transaction (history record
    // {new, parent = old generation, fork = seq, term = max(term, highest seen, minTerm) + 1};
    // the log continues at seq+1), then applies this board's own queued requests as a master
    // applies forwarded ones (drainOwnOutbox). Refused (Errc::Refused) on a slave that never
    // synced or a master, Errc::Busy while a FULL sync holds DIR/possync.full.
    Result<PromoteResult> promote(const PromoteOptions& options = {});
    // Master: applies the requests still in this board's own outbox through applyRequest, in id
    // order, exactly once (each leaves the outbox in the transaction that records its outcome);
    // returns how many were handled. Promote calls it; call it again at start when outboxInfo()
    // shows requests on a master (a crash between promotion and drain).
    Result<uint64_t> drainOwnOutbox();
    // Master: how a peer at (generation, seq) continues (store/history.h, planResume).
    Result<ResumePlan> resumePlan(uint64_t peerGeneration, uint64_t peerSeq);
    // Raises highest_term_seen to `term` (never lowers it).
    Status noteTerm(uint64_t term);
    // Fencing: every writer (and applyRequest) is refused with Errc::Refused naming `reason`.
    Status fence(const std::string& reason);
    Status unfence();
    // Writes the log entries after `forkSeq` (changes a new master never got) to `path` in the
    // text format of `possync --hex dump` with two leading columns (see failover.cc), atomically
    // (temp file, fsync, rename).
    Result<ExportInfo> exportSince(uint64_t forkSeq, const std::string& path);
    // A fenced (or any) master becomes a slave that takes a FULL sync next: role slave, not
    // synced, not fenced; history and term kept (export first: the FULL empties the log).
    Status rejoinAsSlave();

    // The change log. On a slave it holds the master's entries as received (ApplyTxn), from its
    // last FULL sync's seq on: trim it as a master's (trimLogAt).
    Result<LogInfo> logInfo();
    // Calls fn(seq, frame bytes) for entries with seq >= from, in order, until fn returns false,
    // maxEntries entries or maxBytes bytes were given (at least one entry when any exists).
    // The bytes are only valid during the call (they point into LMDB's map).
    Status readLog(uint64_t from, size_t maxEntries, size_t maxBytes,
                   const std::function<bool(uint64_t, Bytes)>& fn);
    // Keeps entries after `seq` from trimming while the returned id is pinned.
    int pin(uint64_t seq);
    void movePin(int id, uint64_t seq);
    void unpin(int id);
    std::optional<uint64_t> minPin() const;
    // Trims the oldest entries per `limits`; returns how many were removed.
    Result<uint64_t> trimLog(const TrimLimits& limits);
    // Whether trimLogAt(limits, pinned) would remove anything, decided in a read transaction
    // (never waits for the writer lock, which another process may hold for seconds).
    Result<bool> trimNeeded(const TrimLimits& limits, std::optional<uint64_t> pinned);
    // trimLog with the pin given (minPin() read by the caller) instead of the pins: it reads
    // no member but the environment and logs nothing, so a worker thread may run it while the
    // loop thread uses the Store (the daemon takes the writer lock off its loop this way).
    Result<uint64_t> trimLogAt(const TrimLimits& limits, std::optional<uint64_t> pinned);

    // Business tables: names, entry counts, digests.
    Result<std::vector<TableInfo>> tables();
    // The watched tables' combined digest and the position it belongs to, in one read
    // transaction (never the writer lock).
    Result<WatchedDigest> watchedDigest();

    // In-process listeners, called after each commit that appended a log entry (seq) or after
    // a slave apply (its new position seq). Returns an id for removeCommitListener.
    int addCommitListener(std::function<void(uint64_t seq)> fn);
    void removeCommitListener(int id);

    // Internal (txn.cc): called by the transactions.
    lmdb::Dbi metaDbi() const { return metaDbi_; }
    lmdb::Dbi logDbi() const { return logDbi_; }
    lmdb::Dbi digestDbi() const { return digestDbi_; }
    const RequestDbs& requestDbs() const { return requestDbs_; }
    bool hasRequestDbs() const { return hasRequestDbs_; }
    lmdb::Dbi trustDbi() const { return trustDbi_; }
    bool hasTrustDb() const { return hasTrustDb_; }
    // The handle of a reserved table a FULL sync carries (isReplicatedTable); nullopt for any
    // other name, or one this (read-only) open of an older directory does not have.
    std::optional<lmdb::Dbi> replicatedDbi(std::string_view table) const;
    void committed(uint64_t seq, bool appendedLog);
    // Wakes daemons watching the directory (possync.notify), without in-process listeners.
    void touchNotify();
    // A slave's FULL sync holds this (flock on DIR/possync.full) while its transaction is open.
    Result<std::shared_ptr<void>> lockFull();

private:
    struct BatchStep;
    // One request of applyRequests in its open transaction; `rejected`: log it as rejected for
    // this reason without applying it (it failed part-way in an earlier run of the batch).
    Result<BatchStep> applyInBatch(WriteTxn& w, const wire::WriteRequest* request,
                                   const std::string* rejected);
    Store(std::string dir, StoreOptions options) : dir_(std::move(dir)), options_(std::move(options)) {}
    Status init();
    // Opens an existing directory's handles from a read transaction (no writer lock); false when
    // something is missing that the write path must create.
    Result<bool> openFromRead();
    Status createNotifyFile();

    std::string dir_;
    StoreOptions options_;
    std::string notifyPath_;
    std::unique_ptr<lmdb::Env> env_;
    lmdb::Dbi metaDbi_ = 0, logDbi_ = 0, digestDbi_ = 0;
    RequestDbs requestDbs_;
    bool hasRequestDbs_ = false;  // false: a read-only open of a directory made before them
    lmdb::Dbi trustDbi_ = 0;
    bool hasTrustDb_ = false;  // likewise for possync.trust
    std::map<int, uint64_t> pins_;
    int nextPin_ = 1;
    std::map<int, std::function<void(uint64_t)>> listeners_;
    int nextListener_ = 1;
};

// Default map size for this board's word size.
size_t defaultMapSize();

}  // namespace possync::store
