#include "store/history.h"

#include <algorithm>

namespace possync::store {

std::string encodeHistory(const std::vector<HistoryRecord>& history) {
    std::string out(history.size() * 32, '\0');
    auto* p = reinterpret_cast<uint8_t*>(out.data());
    for (const auto& r : history) {
        putBe64(p, r.generation);
        putBe64(p + 8, r.parent);
        putBe64(p + 16, r.fork);
        putBe64(p + 24, r.term);
        p += 32;
    }
    return out;
}

Result<std::vector<HistoryRecord>> decodeHistory(Bytes value) {
    if (value.size % 32 != 0 || value.size / 32 > kMaxHistory)
        return makeError(Errc::Corrupt, "possync.meta history is " + std::to_string(value.size) +
                                            " bytes: not a list of at most " + std::to_string(kMaxHistory) +
                                            " records of 32 bytes");
    std::vector<HistoryRecord> out;
    for (size_t off = 0; off < value.size; off += 32) {
        const uint8_t* p = value.data + off;
        out.push_back(HistoryRecord{getBe64(p), getBe64(p + 8), getBe64(p + 16), getBe64(p + 24)});
    }
    return out;
}

void pushHistory(std::vector<HistoryRecord>& history, const HistoryRecord& r) {
    history.push_back(r);
    if (history.size() > kMaxHistory) history.erase(history.begin(), history.end() - kMaxHistory);
}

std::optional<uint64_t> sharedUpTo(const std::vector<HistoryRecord>& history, uint64_t generation) {
    if (history.empty()) return std::nullopt;
    if (history.back().generation == generation) return UINT64_MAX;
    // Walk the chain from the current generation through the parents: a generation's entries
    // are shared up to the fork of its child on the chain (each fork is at or before the
    // previous one, so the last one met bounds what is shared).
    uint64_t limit = UINT64_MAX;
    const HistoryRecord* at = &history.back();
    for (size_t steps = 0; steps < history.size() && at->parent != 0; ++steps) {
        limit = std::min(limit, at->fork);
        if (at->parent == generation) return limit;
        const HistoryRecord* parent = nullptr;
        for (const auto& r : history)
            if (r.generation == at->parent) parent = &r;
        if (!parent) return std::nullopt;  // the lineage is not known further back
        at = parent;
    }
    return std::nullopt;
}

std::vector<Ancestor> ancestryOf(const std::vector<HistoryRecord>& history) {
    std::vector<Ancestor> out;
    if (history.empty()) return out;
    const HistoryRecord* at = &history.back();
    while (at->parent != 0 && out.size() < kMaxHistory) {
        out.push_back(Ancestor{at->parent, at->fork});
        const HistoryRecord* parent = nullptr;
        for (const auto& r : history)
            if (r.generation == at->parent) parent = &r;
        if (!parent) break;  // known no further back
        at = parent;
    }
    return out;
}

std::vector<HistoryRecord> historyFromAncestry(uint64_t generation, uint64_t term,
                                               const std::vector<Ancestor>& ancestry) {
    std::vector<HistoryRecord> history;
    // Oldest first: the deepest ancestor is a root; each later one names the one before.
    for (size_t i = ancestry.size(); i-- > 0;) {
        uint64_t parent = i + 1 < ancestry.size() ? ancestry[i + 1].generation : 0;
        uint64_t fork = i + 1 < ancestry.size() ? ancestry[i + 1].fork : 0;
        pushHistory(history, HistoryRecord{ancestry[i].generation, parent, fork, 0});
    }
    pushHistory(history, HistoryRecord{generation, ancestry.empty() ? 0 : ancestry[0].generation,
                                       ancestry.empty() ? 0 : ancestry[0].fork, term});
    return history;
}

uint64_t generationAt(uint64_t generation, const std::vector<Ancestor>& ancestry, uint64_t seq) {
    uint64_t g = generation;
    for (const auto& a : ancestry) {
        if (seq > a.fork) break;
        g = a.generation;
    }
    return g;
}

std::optional<uint64_t> sharedWith(uint64_t generation, const std::vector<Ancestor>& ancestry,
                                   uint64_t peerGeneration) {
    if (peerGeneration == generation) return UINT64_MAX;
    uint64_t limit = UINT64_MAX;
    for (const auto& a : ancestry) {
        limit = std::min(limit, a.fork);
        if (a.generation == peerGeneration) return limit;
    }
    return std::nullopt;
}

ResumePlan planResume(const ResumeView& m, uint64_t peerGeneration, uint64_t peerSeq) {
    ResumePlan p;
    std::vector<HistoryRecord> history = m.history;
    if (history.empty() || history.back().generation != m.generation)
        pushHistory(history, HistoryRecord{m.generation, 0, 0, 0});
    auto shared = sharedUpTo(history, peerGeneration);
    if (!shared) {
        p.why = "slave holds another generation, not an ancestor of this one";
        return p;
    }
    if (*shared != UINT64_MAX) {
        p.forkSeq = *shared;
        if (peerSeq > *shared) {
            p.discarded = peerSeq - *shared;
            p.why = "slave went " + std::to_string(p.discarded) + " changes past the fork at seq " +
                    std::to_string(*shared) + " of its generation";
            return p;
        }
    }
    if (peerSeq > m.head) {
        p.why = "slave is ahead of the master's head";
        return p;
    }
    if (peerSeq < m.resyncSeq) {
        p.why = "watched tables changed since the slave's position";
        return p;
    }
    if (peerSeq == m.head) {
        p.kind = ResumePlan::Incremental;
        p.fromSeq = peerSeq + 1;
        p.why = "slave is up to date";
        return p;
    }
    if (m.logFirst == 0 || peerSeq + 1 < m.logFirst) {
        p.why = "slave's position was trimmed from the log";
        return p;
    }
    p.kind = ResumePlan::Incremental;
    p.fromSeq = peerSeq + 1;
    p.why = *shared == UINT64_MAX ? "resuming from the log" : "resuming from the log across a promotion";
    return p;
}

}  // namespace possync::store
