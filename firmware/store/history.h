// The generation history (DESIGN.md §10): which generations this board's data descends from,
// and where each one forked from its parent -- like Redis PSYNC2's secondary replication id.
//
// A master created fresh has one record {gen, 0, 0, 0}. A promotion appends {new gen, parent =
// old gen, fork = the seq the old generation had reached on the promoted board, term + 1}: the
// old generation's entries up to `fork` are the new generation's too, so a slave still at
// (old gen, s <= fork) continues INCREMENTAL. Entries in possync.log keep the generation they
// were written in (their header's): the log of a promoted board holds old-generation entries up
// to the fork and new-generation ones after it; a reader maps an entry's seq to its generation
// through this history, never by comparing its header with meta's generation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace possync::store {

struct HistoryRecord {
    uint64_t generation = 0;
    uint64_t parent = 0;  // 0: a root (a fresh master, or a lineage not known further back)
    uint64_t fork = 0;    // the parent's last seq shared with this generation
    uint64_t term = 0;    // +1 per promotion; the highest term of a store wins

    bool operator==(const HistoryRecord&) const = default;
};

// Records kept (the oldest go first): far more promotions than a store sees between FULL syncs.
inline constexpr size_t kMaxHistory = 16;

// meta key `history`: the records oldest first, 4 x u64 big-endian each.
std::string encodeHistory(const std::vector<HistoryRecord>& history);
Result<std::vector<HistoryRecord>> decodeHistory(Bytes value);
// Appends `r`, dropping the oldest records past kMaxHistory.
void pushHistory(std::vector<HistoryRecord>& history, const HistoryRecord& r);

// Where a peer at (generation, seq) may continue from, on a master (Store::resumePlan).
struct ResumePlan {
    enum Kind { Incremental, Full } kind = Full;
    uint64_t fromSeq = 0;    // Incremental: the first seq to send
    uint64_t discarded = 0;  // Full: changes the peer holds past the fork it shares with us
    uint64_t forkSeq = 0;    // the peer's generation is an ancestor: where ours left it
    std::string why;         // for logs and the console
};

// What planResume needs of the master: its lineage, head and log bounds.
struct ResumeView {
    std::vector<HistoryRecord> history;  // oldest first; the last is the current generation
    uint64_t generation = 0;
    uint64_t head = 0;
    uint64_t logFirst = 0;  // oldest seq in the log (0: empty)
    uint64_t resyncSeq = 0;
};

// INCREMENTAL when the peer's generation is ours, or an ancestor it left at seq <= the fork, and
// the log still holds peerSeq+1 (or the peer is at the head); FULL otherwise, with the count of
// the peer's changes past the fork when it is in an ancestor generation.
ResumePlan planResume(const ResumeView& master, uint64_t peerGeneration, uint64_t peerSeq);

// The seq up to which `generation` is shared with the current (last) generation of `history`
// (the current generation itself: UINT64_MAX), or nullopt when it is not an ancestor.
std::optional<uint64_t> sharedUpTo(const std::vector<HistoryRecord>& history, uint64_t generation);

// One step of a generation's ancestry as the Welcome carries it (wire Position): the generation
// it continued, and the last seq it shares with it.
struct Ancestor {
    uint64_t generation = 0;
    uint64_t fork = 0;

    bool operator==(const Ancestor&) const = default;
};

// The ancestry of the current (last) generation of `history`, newest first, following the
// parent chain while the history knows it; each fork is at or before the one after it.
std::vector<Ancestor> ancestryOf(const std::vector<HistoryRecord>& history);

// The history a slave keeps of a master's lineage (the inverse of ancestryOf): the current
// generation at `term`, its ancestors as roots of their chain. Ancestors' own terms are not on
// the wire: they are recorded as 0 (only the current term decides anything).
std::vector<HistoryRecord> historyFromAncestry(uint64_t generation, uint64_t term,
                                               const std::vector<Ancestor>& ancestry);

// The generation whose entry `seq` is in a log of `generation` with that ancestry: an ancestor
// for seqs at or before its fork, else `generation` (log entries keep the generation that wrote
// them).
uint64_t generationAt(uint64_t generation, const std::vector<Ancestor>& ancestry, uint64_t seq);

// How far a board at (peerGeneration, peerSeq) shares the data of `generation` with that
// ancestry: UINT64_MAX for the same generation, the fork for an ancestor, nullopt when unrelated.
std::optional<uint64_t> sharedWith(uint64_t generation, const std::vector<Ancestor>& ancestry,
                                   uint64_t peerGeneration);

}  // namespace possync::store
