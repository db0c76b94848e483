// Fuzz target: the slave's receive path, from raw TCP bytes to LMDB.
//
// The input is a control byte followed by a byte stream from a "master". The stream goes
// through wire::FrameDecoder (split into reads of a size the control byte picks, so partial
// headers and payloads are exercised), each payload through wire::verifyFrame, Fragments
// through a wire::Reassembler, and every ChangeModel through the slave's apply path
// (store::ApplyTxn on a scratch slave directory, opened once per process): FULL chunks as
// Replica does (beginFull on chunk 0, applyFullChunk, INCREMENTAL replay into the same
// transaction), INCREMENTAL models into one batch transaction. At the end of the input the
// open transaction is aborted, or committed when the control byte says so and nothing failed.
//
// Invariants checked (a failure aborts, which libFuzzer reports as a crash):
//   - an aborted or failed transaction leaves every table's entries and digest and the
//     position exactly as they were;
//   - after a commit, each table's stored digest equals a recomputation over its entries,
//     and the position is the one written.
// Never hard-codes the frame header size: inputs are raw bytes, seeds come from encodeFrame.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "log/log.h"

#include "fuzz_target.h"
#include "store/digest.h"
#include "store/store.h"
#include "wire/change_model.h"
#include "wire/fragment.h"
#include "wire/frame.h"
#include "wire/messages.h"

using namespace possync;

namespace {

// Small limits keep one execution cheap and memory bounded; both paths are still reachable.
constexpr uint32_t kMaxFrame = 64 * 1024;
constexpr uint64_t kMaxMessage = 256 * 1024;
// The scratch directory starts over past these (tables are never dropped, and LMDB's named
// database slots are finite).
constexpr size_t kMaxTables = 64;
constexpr uint64_t kMaxEntries = 4096;

#define FUZZ_CHECK(cond, what)                                         \
    do {                                                               \
        if (!(cond)) {                                                 \
            std::fprintf(stderr, "fuzz_frame: invariant: %s\n", what); \
            std::abort();                                              \
        }                                                              \
    } while (0)

class Scratch final {
public:
    ~Scratch() { wipe(); }

    store::Store& get() {
        if (!store_) open();
        return *store_;
    }
    void wipe() {
        store_.reset();
        if (!dir_.empty()) {
            std::error_code ec;
            std::filesystem::remove_all(dir_, ec);
            dir_.clear();
        }
    }

private:
    void open() {
        char tmpl[] = "/tmp/possync-fuzz-frame-XXXXXX";
        char* p = mkdtemp(tmpl);
        FUZZ_CHECK(p != nullptr, "mkdtemp");
        dir_ = p;
        store::StoreOptions o;
        o.noSync = true;
        o.mapSize = size_t(64) << 20;
        auto s = store::Store::open(dir_, o);
        FUZZ_CHECK(s.ok(), "open the scratch store");
        store_ = std::move(s).value();
        FUZZ_CHECK(store_->setRole(store::Role::Slave).ok(), "make the scratch store a slave's");
    }

    std::string dir_;
    std::unique_ptr<store::Store> store_;
};

Scratch& scratch() {
    static Scratch s;
    return s;
}

// What a reader sees: position and, per table, entry count and digest.
struct View {
    uint64_t generation = 0, seq = 0;
    bool synced = false;
    std::map<std::string, std::pair<uint64_t, uint64_t>> tables;
    bool operator==(const View&) const = default;
};

View view(store::Store& s) {
    View v;
    auto m = s.meta();
    FUZZ_CHECK(m.ok(), "read meta");
    v.generation = m->generation;
    v.seq = m->seq;
    v.synced = m->synced;
    auto t = s.tables();
    FUZZ_CHECK(t.ok(), "list tables");
    for (auto& info : *t) v.tables[info.name] = {info.entries, info.digest};
    return v;
}

// Every table's digest equals a recomputation over its entries; returns the entry total.
uint64_t checkDigests(store::Store& s) {
    auto r = s.beginRead();
    FUZZ_CHECK(r.ok(), "begin read");
    auto names = r->tableNames();
    FUZZ_CHECK(names.ok(), "table names");
    uint64_t total = 0;
    for (auto& name : *names) {
        uint64_t seed = store::tableSeed(name), d = 0, n = 0;
        auto st = r->scan(name, Bytes(), 0, [&](Bytes k, Bytes v) {
            d ^= store::entryHash(seed, k, v);
            ++n;
            return true;
        });
        FUZZ_CHECK(st.ok(), "scan a table");
        auto stored = r->digest(name);
        FUZZ_CHECK(stored.ok() && *stored == d, "stored digest equals the recomputation");
        auto entries = r->entries(name);
        FUZZ_CHECK(entries.ok() && *entries == n, "entry count");
        total += n;
    }
    return total;
}

// The part of Replica's frame handling that decides what reaches LMDB (replica.cc), without
// the link: no Welcome needed, the first ChangeModel's generation is the link's.
class Receiver final {
public:
    explicit Receiver(store::Store& s) : store_(s), reassembler_(kMaxMessage) {}

    Status onFrame(Bytes payload, int depth = 0) {
        auto frame = wire::verifyFrame(payload);
        if (!frame) return frame.takeError();
        const wire::Frame* f = *frame;
        switch (f->message_type()) {
            case wire::Message::Welcome: {
                auto* w = f->message_as_Welcome();
                (void)wire::textOf(w->device_id()).size();
                if (w->refused()) return makeError(Errc::Closed, "refused");
                generation_ = w->generation();
                return {};
            }
            case wire::Message::ChangeModel: return onChangeModel(f->message_as_ChangeModel());
            case wire::Message::Fragment: {
                if (depth > 0) return makeError(Errc::Protocol, "a Fragment inside a Fragment");
                auto whole = reassembler_.feed(f->message_as_Fragment());
                if (!whole) return whole.takeError();
                if (whole->size == 0) return {};
                // The reassembler's buffer is reused by the next feed(): handle it now.
                return onFrame(*whole, depth + 1);
            }
            case wire::Message::Error: {
                auto* e = f->message_as_Error();
                (void)wire::errorCodeName(e->code());
                (void)wire::textOf(e->text()).size();
                return makeError(Errc::Closed, "peer error");
            }
            default: (void)wire::messageTypeName(f); return {};
        }
    }

    // Ends the input: commits when asked and nothing failed, aborts otherwise.
    bool finish(bool commit) {
        bool committed = false;
        for (auto* txn : {&full_, &batch_}) {
            if (!*txn) continue;
            if (commit && !failed_) {
                uint64_t seq = txn == &full_ ? fullSeq_ : batchSeq_;
                FUZZ_CHECK((*txn)->setPosition(*generation_, seq).ok(), "set position");
                auto r = (*txn)->commit();
                if (r) {
                    committed = true;
                    committedSeq_ = seq;
                }
            } else {
                (*txn)->abort();
            }
            txn->reset();
        }
        return committed;
    }
    void fail() { failed_ = true; }
    std::optional<uint64_t> generation() const { return generation_; }
    uint64_t committedSeq() const { return committedSeq_; }

private:
    Status onChangeModel(const wire::ChangeModel* cm) {
        if (!generation_) generation_ = cm->generation();
        if (cm->generation() != *generation_) return makeError(Errc::Corrupt, "generation");
        if (cm->last_seq() < cm->first_seq()) return makeError(Errc::Corrupt, "seq range");
        if (cm->flag() == wire::SyncMode::FULL) {
            if (batch_) return makeError(Errc::Protocol, "FULL while a batch is open");
            if (cm->chunk() == 0) {
                if (full_) return makeError(Errc::Protocol, "FULL restarted");
                auto txn = store_.beginApply();
                if (!txn) return txn.takeError();
                full_.emplace(std::move(*txn));
                std::vector<std::string> tables;
                if (cm->tables())
                    for (auto* t : *cm->tables()) tables.emplace_back(wire::textOf(t));
                POSSYNC_TRY(full_->beginFull(tables));
                fullSeq_ = cm->snapshot_seq();
                nextChunk_ = 0;
            }
            if (!full_ || cm->chunk() != nextChunk_) return makeError(Errc::Protocol, "chunk order");
            POSSYNC_TRY(full_->applyFullChunk(cm));
            ++nextChunk_;
            return {};
        }
        if (full_) {  // the replay after a FULL's last chunk
            POSSYNC_TRY(full_->apply(cm));
            fullSeq_ = cm->last_seq();
            return {};
        }
        if (!batch_) {
            auto txn = store_.beginApply();
            if (!txn) return txn.takeError();
            batch_.emplace(std::move(*txn));
        }
        POSSYNC_TRY(batch_->apply(cm));
        batchSeq_ = cm->last_seq();
        return {};
    }

    store::Store& store_;
    wire::Reassembler reassembler_;
    std::optional<uint64_t> generation_;
    std::optional<store::ApplyTxn> full_, batch_;
    uint64_t fullSeq_ = 0, batchSeq_ = 0, committedSeq_ = 0;
    uint32_t nextChunk_ = 0;
    bool failed_ = false;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::setStderr(false);
    log::setAllLevels(log::Level::Fatal);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    // Control byte: bits 0-2 pick the read size, bit 3..5 == 0 asks for a commit (1 in 8).
    static constexpr size_t kReadSizes[8] = {1, 2, 3, 7, 64, 509, 4096, SIZE_MAX};
    const size_t readSize = kReadSizes[data[0] & 7];
    const bool commit = ((data[0] >> 3) & 7) == 0;
    Bytes stream(data + 1, size - 1);

    store::Store& s = scratch().get();
    const View before = view(s);

    Receiver rx(s);
    wire::FrameDecoder decoder(kMaxFrame);
    for (size_t off = 0; off < stream.size;) {
        size_t n = std::min(readSize, stream.size - off);
        auto r =
            decoder.feed(Bytes(stream.data + off, n), [&](Bytes payload) { return rx.onFrame(payload); });
        if (!r) {
            rx.fail();  // the link is dropped: what was not committed is gone
            break;
        }
        FUZZ_CHECK(decoder.buffered() <= wire::kFrameHeaderBytes + kMaxFrame, "decoder memory bound");
        off += n;
    }
    bool committed = rx.finish(commit);

    if (!committed) {
        FUZZ_CHECK(view(s) == before, "an aborted apply changed nothing");
        return 0;
    }
    View after = view(s);
    FUZZ_CHECK(after.generation == *rx.generation() && after.seq == rx.committedSeq() && after.synced,
               "the committed position");
    uint64_t entries = checkDigests(s);
    if (after.tables.size() > kMaxTables || entries > kMaxEntries) scratch().wipe();
    return 0;
}
