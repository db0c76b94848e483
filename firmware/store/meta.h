// possync.meta: the board's identity and position, and the listening configuration.
//
// Layout (DESIGN.md §2), keys are ASCII, numbers 8-byte big-endian:
//   format      u64  on-disk format version (POSSYNC_FORMAT_VERSION)
//   generation  u64  master: its history id; slave: the generation of the data it holds
//   seq         u64  master: head seq; slave: the last seq applied
//   device      str  this board's device id
//   role        str  "master" or "slave"
//   synced      u64  slave: 1 once a FULL sync completed (it can RESUME), else 0
//   watched     str  comma-separated watched tables (the listening configuration)
//   resync_seq  u64  seq at which the watched set last changed: older positions need FULL
//   log_bytes   u64  total value bytes in possync.log (for trimming by bytes)
//   next_request u64 slave: the id the next forwarded write gets (ids never reused)
//   outbox_count, outbox_bytes u64  slave: requests in possync.outbox and their bytes
//   outbox_max  u64  slave: the outbox bound (possyncd --outbox-max-bytes; 0: the default)
//   last_rejection str  slave: the last rejection of one of its requests, for people
//   term        u64  the term of this board's generation (+1 per promotion; 0: never failed over)
//   highest_term_seen u64  the highest term of this store seen (Store::noteTerm)
//   history     4 x u64 per record: this board's generation lineage (store/history.h)
//   fenced      str  why this board is fenced (a newer master of its store exists); empty: not
//   role_pinned u64  1 once a failover set the role (promote, rejoin): the directory's role wins
//                    over possyncd --role from then on (daemon/role.h)
// Keys added after format 1 are optional: a directory without them reads as term 0, history
// [{generation, 0, 0, 0}], not fenced (no format bump).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "lmdb/mdb.h"

#include "store/history.h"

namespace possync::store {

enum class Role {
    Master,  // owns the business data; writers capture changes
    Slave,   // mirrors a master; business tables are read-only to writers
};

const char* roleName(Role role);

struct Meta {
    uint64_t format = 0;
    uint64_t generation = 0;
    uint64_t seq = 0;
    std::string device;
    Role role = Role::Master;
    bool synced = false;
    std::vector<std::string> watched;
    uint64_t resyncSeq = 0;
    uint64_t logBytes = 0;
    uint64_t nextRequest = 1;
    uint64_t outboxCount = 0;
    uint64_t outboxBytes = 0;
    uint64_t outboxMaxBytes = 0;
    std::string lastRejection;
    uint64_t term = 0;
    uint64_t highestTermSeen = 0;
    std::vector<HistoryRecord> history;  // oldest first; never empty once read
    std::string fenced;
    bool rolePinned = false;

    bool isWatched(std::string_view table) const;
};

inline constexpr std::string_view kMetaDb = "possync.meta";
inline constexpr std::string_view kLogDb = "possync.log";
inline constexpr std::string_view kDigestDb = "possync.digest";
inline constexpr std::string_view kReservedPrefix = "possync.";

// Whether this directory's role wins over possyncd --role: once a failover touched its data
// (promoted, rejoined, fenced, or holding a promoted master's data: term > 0 or a history of more
// than one record) the role lives here, whatever the board's installed configuration says.
bool roleFromData(const Meta& meta);

// Reads the whole meta record. Errc::NotFound when the directory has never been initialised.
Result<Meta> readMeta(const lmdb::Txn& txn, lmdb::Dbi metaDbi);
// Writes the fields of `meta` (all of them).
Status writeMeta(lmdb::Txn& txn, lmdb::Dbi metaDbi, const Meta& meta);
Status writeMetaU64(lmdb::Txn& txn, lmdb::Dbi metaDbi, std::string_view key, uint64_t value);

Status writeMetaHistory(lmdb::Txn& txn, lmdb::Dbi metaDbi, const std::vector<HistoryRecord>& history);

// Validates a table name for business data: non-empty, at most 255 bytes, no NUL, not reserved.
Status validateTableName(std::string_view name);
// Parses "a,b,c" (spaces around names ignored, duplicates removed, sorted).
Result<std::vector<std::string>> parseTableList(std::string_view list);
std::string joinTableList(const std::vector<std::string>& tables);

// A random 64-bit value from the kernel (generations, device ids).
uint64_t randomU64();

}  // namespace possync::store
