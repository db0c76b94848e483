// Snapshot: a FULL copy of the watched tables, cut into chunks of bounded size.
//
// Each chunk is read in its own short LMDB read transaction (a slow slave never pins pages on
// the master: DESIGN.md §8) and carries the seq it was read at. Chunk boundaries are fixed
// when a chunk is first built, so a chunk's frame is the same for every slave: sessions that
// start a FULL sync while chunk 0 is still alive join the same Snapshot and share the frames
// (after a store-wide power cut every slave asks at once). Frames are held by the sessions that
// still need them (shared_ptr) and only weakly here: memory is bounded by the sessions'
// windows, not by the data set. A chunk that was dropped is read again on demand at a newer
// seq; the slave's replay up to the largest chunk seq makes that safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

#include "store/store.h"

namespace possync::sync {

// A complete wire frame (header + payload, wire/frame.h), shared between sessions.
using SharedFrame = std::shared_ptr<const std::vector<uint8_t>>;

struct Chunk {
    SharedFrame frame;
    uint64_t readSeq = 0;
    uint32_t number = 0;
    bool last = false;
    size_t records = 0;
    bool shared = false;  // an existing frame (built for another session or earlier)
};

class Snapshot final {
public:
    Snapshot(store::Store& store, uint64_t generation, std::vector<std::string> tables, size_t chunkBytes);

    // Chunk `number` (0-based), built now or shared. Chunks must be asked for in order the
    // first time (number <= chunks built so far). Every chunk, first built or rebuilt, holds
    // at most chunkBytes of records (or one record when that alone is larger): a rebuild that
    // would exceed it (writes grew its fixed key range) is Errc::TooLarge and makes the
    // snapshot stale (no longer joinable; the session asking must start a new FULL sync).
    Result<Chunk> chunk(uint32_t number);

    uint64_t generation() const { return generation_; }
    // The seq chunk 0 was read at: the log from firstSeq()+1 must be replayed after the chunks.
    uint64_t firstSeq() const { return firstSeq_; }
    // The records chunk 0 announced (the snapshot's size at its read; progress on the consoles).
    uint64_t announcedRecords() const { return announced_; }
    // Whether a new FULL request may join: chunk 0 is still held by some session, and no
    // rebuilt chunk outgrew the chunk size.
    bool joinable() const { return !stale_ && !cache_.empty() && !cache_[0].expired(); }
    const std::vector<std::string>& tables() const { return tables_; }
    uint64_t chunksBuilt() const { return built_; }

private:
    // Where a chunk starts: the table index and the key it follows (empty: the table's start).
    struct Start {
        size_t table = 0;
        std::string afterKey;
        bool done = false;  // past the last table: the previous chunk was the last
    };
    Result<Chunk> build(uint32_t number);

    store::Store& store_;
    uint64_t generation_;
    std::vector<std::string> tables_;
    std::vector<std::string> scanned_;  // tables_, then the replicated reserved tables
    size_t chunkBytes_;
    uint64_t firstSeq_ = 0;
    uint64_t announced_ = 0;
    std::vector<Start> starts_;  // starts_[i]: chunk i
    std::vector<std::weak_ptr<const std::vector<uint8_t>>> cache_;
    std::vector<uint64_t> readSeqs_;
    std::vector<bool> lastFlags_;
    std::vector<size_t> records_;
    uint64_t built_ = 0;
    bool stale_ = false;
};

}  // namespace possync::sync
