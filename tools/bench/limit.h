// The limit a full sync is measured against: the same records appended straight into LMDB.
//
// N records of the benchmark data set written into a fresh LMDB environment in ONE write
// transaction with MDB_APPEND (sorted keys), committed with fsync: what the slave's disk and
// LMDB can do at best, with no network, no FlatBuffers and no change capture in the way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

#include "proc_stats.h"

namespace possync::bench {

// The value bytes of records 0..N-1 (tools/possync syntheticValue, seed 1), generated once before
// any timing. Empty when N*B is above `maxBytes`: the limit then generates each value inside
// its loop (and says so), which makes it slightly slower, never faster.
std::vector<uint8_t> pregenerateValues(uint64_t records, uint64_t valueSize, uint64_t maxBytes);

struct LimitRun {
    double seconds = 0;        // open + puts + commit(fsync)
    double commitSeconds = 0;  // of which the commit
    Sched sched;               // this process's CPU and run-queue wait over the same span
};

// Appends the records into a new environment in `dir` (which must not exist) with a map of
// `mapBytes`, and times it. `values` is pregenerateValues()'s result (or empty).
Result<LimitRun> runLimit(const std::string& dir, uint64_t records, uint64_t valueSize,
                          const std::vector<uint8_t>& values, size_t mapBytes);

}  // namespace possync::bench
