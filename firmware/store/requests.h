// Slave writes (DESIGN.md §9): the reserved databases that make a forwarded write exactly once.
//
//   possync.outbox   slave: 8-byte big-endian request id -> the request (a Frame holding one
//                    WriteRequest, the bytes the link sends). A request stays until the change
//                    model carrying its origin is applied here, or its rejection is recorded.
//   possync.clients  every board: device id -> the last request of that device the master
//                    handled: last request id, its seq, requests applied, requests rejected
//                    (4 x u64, big-endian). The master writes it in the request's transaction;
//                    slaves write the same record when they apply the model carrying the origin,
//                    so a promoted slave knows what the old master applied.
//   possync.results  every board: device id, NUL, 8-byte big-endian request id -> the outcome
//                    (1 byte status 0 committed / 1 rejected, 8-byte seq, reason text); the last
//                    kResultsKeptPerDevice of each device. A resent request gets this stored
//                    outcome again; possync_wait reads its own board's outcomes here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "lmdb/mdb.h"

#include "store/trust_set.h"

namespace possync::store {

inline constexpr std::string_view kOutboxDb = "possync.outbox";
inline constexpr std::string_view kClientsDb = "possync.clients";
inline constexpr std::string_view kResultsDb = "possync.results";
// Outcomes kept per device: far more than a slave ever has in flight (its window).
inline constexpr uint64_t kResultsKeptPerDevice = 4096;
// --outbox-max-bytes when neither the daemon nor the directory says otherwise.
inline constexpr uint64_t kDefaultOutboxMaxBytes = uint64_t(64) << 20;

// The reserved tables a FULL sync carries with the watched ones: a promoted slave must know
// what its old master applied for every writing board, and every board the store's trust set
// (trust_set.h; the master's replaces a slave's).
inline bool isReplicatedTable(std::string_view table) {
    return table == kClientsDb || table == kResultsDb || table == kTrustDb;
}

// What the master did with one request.
struct RequestResult {
    uint64_t requestId = 0;
    bool rejected = false;
    uint64_t seq = 0;  // the master's seq whose change model carries the origin (0: not logged)
    std::string reason;
};

// The master's record of one writing board (possync.clients).
struct ClientRecord {
    std::string device;
    uint64_t lastRequest = 0;
    uint64_t lastSeq = 0;
    uint64_t applied = 0;
    uint64_t rejected = 0;
};

struct RequestDbs {
    lmdb::Dbi outbox = 0;
    lmdb::Dbi clients = 0;
    lmdb::Dbi results = 0;
};

// Writes `result` for `device` into possync.results (dropping outcomes older than the kept
// window) and advances its possync.clients record. Used by the master's request transaction
// and by every slave applying a change model with an origin: both write the same records.
Status recordOutcome(lmdb::Txn& txn, const RequestDbs& dbs, std::string_view device,
                     const RequestResult& result);
// Only the possync.results entry (an outcome the master did not log: nothing to count).
Status putResult(lmdb::Txn& txn, const RequestDbs& dbs, std::string_view device, const RequestResult& result);
Result<std::optional<RequestResult>> findResult(const lmdb::Txn& txn, const RequestDbs& dbs,
                                                std::string_view device, uint64_t requestId);
Result<std::optional<ClientRecord>> findClient(const lmdb::Txn& txn, const RequestDbs& dbs,
                                               std::string_view device);
Result<std::vector<ClientRecord>> listClients(lmdb::Txn& txn, const RequestDbs& dbs);

// Shared-counter values (the ADD op): 8-byte big-endian two's complement.
Result<int64_t> decodeCounter(std::string_view table, Bytes key, Bytes value);
void encodeCounter(uint8_t out[8], int64_t value);
// XXH64(value, seed 0): what a VALUE_HASH condition compares.
uint64_t valueHash(Bytes value);
// A key for people: printable ASCII as text, anything else as 0x-hex; clipped.
std::string describeKey(Bytes key);

}  // namespace possync::store
