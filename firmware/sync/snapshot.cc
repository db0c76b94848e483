#include "sync/snapshot.h"

#include <optional>

#include "wire/change_model.h"
#include "wire/frame.h"

namespace possync::sync {

Snapshot::Snapshot(store::Store& store, uint64_t generation, std::vector<std::string> tables,
                   size_t chunkBytes)
    : store_(store), generation_(generation), tables_(std::move(tables)), chunkBytes_(chunkBytes) {
    starts_.push_back(Start{});
    // After the watched tables, the records of the writing boards (DESIGN.md §10): a slave
    // promoted after a FULL sync must know what was applied for every device (exactly once);
    // then the store's trust set (§11), which replaces the slave's whole.
    scanned_ = tables_;
    scanned_.emplace_back(store::kClientsDb);
    scanned_.emplace_back(store::kResultsDb);
    scanned_.emplace_back(store::kTrustDb);
}

Result<Chunk> Snapshot::chunk(uint32_t number) {
    if (number < cache_.size()) {
        if (auto frame = cache_[number].lock())
            return Chunk{frame, readSeqs_[number], number, lastFlags_[number], records_[number], true};
        return build(number);
    }
    if (number != cache_.size())
        return makeError(Errc::InvalidArgument, "snapshot chunk " + std::to_string(number) +
                                                    " asked before chunk " + std::to_string(cache_.size()));
    return build(number);
}

Result<Chunk> Snapshot::build(uint32_t number) {
    const Start start = starts_[number];
    auto txn = store_.beginRead();
    if (!txn) return txn.takeError();
    uint64_t readSeq = txn->meta().seq;
    if (txn->meta().generation != generation_)
        return makeError(Errc::Closed, "the master's generation changed during a snapshot");

    // A rebuilt chunk keeps its boundaries: it ends exactly where chunk number+1 starts.
    const bool rebuilding = number < cache_.size();
    const Start* stop = (rebuilding && number + 1 < starts_.size()) ? &starts_[number + 1] : nullptr;

    wire::ChangeModelWriter writer(std::min<size_t>(chunkBytes_ + 4096, 4u << 20));
    size_t bytes = 0, records = 0;
    Start next = start;
    bool cut = false, overflow = false;
    while (next.table < scanned_.size() && !cut && !overflow) {
        if (stop && next.table == stop->table && stop->afterKey.empty()) break;
        const std::string& table = scanned_[next.table];
        const bool stopInThisTable = stop && next.table == stop->table;
        std::string lastKey;
        const std::string after = next.afterKey;
        auto scan = [&](const std::function<bool(Bytes, Bytes)>& fn) {
            return next.table < tables_.size() ? txn->scanFrom(table, Bytes(after), fn)
                                               : txn->scanReplicated(table, Bytes(after), fn);
        };
        auto r = scan([&](Bytes k, Bytes v) {
            if (!after.empty() && k.view() == after) return true;  // the previous chunk's last key
            if (stopInThisTable && k.view() > std::string_view(stop->afterKey)) {
                cut = true;
                return false;
            }
            if (bytes > 0 && bytes + k.size + v.size + 32 > chunkBytes_) {
                if (rebuilding) {
                    overflow = true;  // its end is fixed: it cannot be cut here
                    return false;
                }
                cut = true;
                return false;
            }
            writer.put(table, k, v);
            bytes += k.size + v.size + 32;
            ++records;
            lastKey.assign(k.view());
            return true;
        });
        if (!r && r.error().code != Errc::NotFound) return r.takeError();  // NotFound: not created yet
        if (overflow) {
            // Writes since the first build grew this key range past the chunk size. A frame
            // that large may not fit the slave's --max-frame, and chunk numbers are shared by
            // every session of this snapshot, so the range cannot be split: this snapshot ends
            // here. New FULL syncs get a fresh one, whose chunks are cut when built.
            stale_ = true;
            return makeError(Errc::TooLarge, "snapshot chunk " + std::to_string(number) +
                                                 " grew past --chunk-bytes (" + std::to_string(chunkBytes_) +
                                                 ") since it was first read; a new FULL sync starts over");
        }
        if (cut) {
            if (!lastKey.empty()) next.afterKey = lastKey;
        } else {
            if (stopInThisTable) break;  // the table ended before the boundary: chunk done
            ++next.table;
            next.afterKey.clear();
        }
    }
    bool last = rebuilding ? bool(lastFlags_[number]) : next.table >= scanned_.size();
    // Chunk 0 announces the snapshot's size (records at its read): a slave refuses a FULL that
    // goes far past it instead of filling its map with a FULL that never ends.
    std::optional<uint64_t> total;
    if (number == 0) {
        total = 0;
        for (const auto& table : tables_) {
            auto n = txn->entries(table);
            if (n) *total += *n;  // NotFound: not created yet
        }
        for (size_t i = tables_.size(); i < scanned_.size(); ++i) {
            auto n = txn->entriesReplicated(scanned_[i]);
            if (n) *total += *n;
        }
    }
    Bytes payload = writer.finishFull(generation_, readSeq, number, last,
                                      number == 0 ? tables_ : std::vector<std::string>{}, total);
    auto frame = std::make_shared<std::vector<uint8_t>>();
    frame->reserve(wire::kFrameHeaderBytes + payload.size);
    wire::appendFrameHeader(*frame, payload);
    frame->insert(frame->end(), payload.data, payload.data + payload.size);

    if (number == cache_.size()) {
        cache_.emplace_back(frame);
        readSeqs_.push_back(readSeq);
        lastFlags_.push_back(last);
        records_.push_back(records);
        if (!last) starts_.push_back(next);
        if (number == 0) {
            firstSeq_ = readSeq;
            announced_ = total.value_or(0);
        }
        ++built_;
    } else {
        // Rebuilt: same boundaries (the next start is fixed), newer data and seq.
        cache_[number] = frame;
        readSeqs_[number] = readSeq;
    }
    return Chunk{frame, readSeq, number, lastFlags_[number], records};
}

}  // namespace possync::sync
