// The `possync` tool's data commands (DESIGN.md §5), each a function over an open Store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "store/store.h"

namespace possync::tool {

struct TextMode {
    bool hex = false;   // --hex: keys and values are hex on input and output
    bool json = false;  // --json: get, dump, digest and info print JSON (dump: one object per line)
};

// Exit code of a write whose request is still queued when the wait ends (not an error: the
// request stays in the outbox and the daemon forwards it; `possync outbox` shows it).
inline constexpr int kExitPending = 3;

// How put/del/add write (DESIGN.md §9). On a slave a write to a watched table becomes a request
// in the outbox; by default the tool then waits until the master's change carrying it is applied
// on this board (read-your-writes).
struct WriteOptions {
    enum class Condition {
        None,
        Absent,   // --if-absent: KEY must not exist
        Present,  // --if-present: KEY must exist
        Value,    // --if-value V: KEY must hold V (compared by hash on the master)
    };
    Condition condition = Condition::None;
    std::string ifValue;  // --if-value, as typed (hex with --hex)
    bool wait = true;     // --no-wait: return once queued
    uint64_t waitMs = 5000;
    bool printSeq = false;  // --seq: print "seq N" (the master's seq that carries the write)
    // put --value-file PATH (or - for stdin): the value's bytes as read, not decoded.
    std::optional<std::string> rawValue;
};

// Each returns the process exit code and prints a one-line reason on failure: 0 done (applied
// on this board), 1 failed or rejected ("rejected: <reason>" for a failed condition),
// kExitPending when a slave's request was queued and not yet applied when the wait ended.
int cmdPut(store::Store& s, const TextMode& m, const std::string& table, const std::string& key,
           const std::string& value, const WriteOptions& w = {});
int cmdGet(store::Store& s, const TextMode& m, const std::string& table, const std::string& key);
int cmdDel(store::Store& s, const TextMode& m, const std::string& table, const std::string& key,
           const WriteOptions& w = {});
// Adds DELTA to an 8-byte big-endian signed counter (absent: 0).
int cmdAdd(store::Store& s, const TextMode& m, const std::string& table, const std::string& key,
           int64_t delta, const WriteOptions& w = {});
// A slave's outbox, or on a master its writing boards (outbox.cc).
int cmdOutbox(store::Store& s);
int cmdDump(store::Store& s, const TextMode& m, const std::string& table);
int cmdDigest(store::Store& s, const TextMode& m);
int cmdInfo(store::Store& s, const TextMode& m);
int cmdWatch(store::Store& s, const std::string* list);

struct LoadOptions {
    uint64_t records = 0;
    uint64_t valueSize = 100;
    uint64_t start = 0;  // index of the first record (to extend an earlier load)
    uint64_t batch = 0;  // records per transaction; 0 = as many as one change model holds
    std::string table = "bench";
    uint64_t seed = 1;
};
int cmdLoad(store::Store& s, const LoadOptions& o);

// Synthetic record i of the benchmark data set: 16-byte big-endian counter key and B
// pseudo-random (incompressible) value bytes derived from (seed, i).
void syntheticKey(uint64_t i, uint8_t out[16]);
void syntheticValue(uint64_t seed, uint64_t i, uint8_t* out, size_t size);

// "position=<gen>:<seq> digest=<hex> count=<n>" over all watched tables.
Result<std::string> digestLine(store::Store& s);
// `key`: the board's public key and fingerprint (DESIGN.md §11), the key made when missing.
int cmdKey(const std::string& dir);

}  // namespace possync::tool
