// checkSeqFields: a change model's seq fields must describe exactly what it carries (one
// transaction, or one FULL chunk read at one seq); anything else is refused before apply.
#include <doctest/doctest.h>

#include <cstring>
#include <vector>

#include "wire/change_model.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::wire;

namespace {

struct Fields {
    SyncMode flag = SyncMode::INCREMENTAL;
    uint64_t first = 0, last = 0, snapshot = 0;
};

// A verified ChangeModel frame with exactly these fields (and one PUT), in aligned storage.
struct Built {
    std::vector<uint64_t> storage;
    const ChangeModel* cm = nullptr;
};

Built build(const Fields& f) {
    flatbuffers::FlatBufferBuilder fbb;
    auto table = fbb.CreateString("menu");
    auto key = fbb.CreateVector(reinterpret_cast<const uint8_t*>("k"), 1);
    auto value = fbb.CreateVector(reinterpret_cast<const uint8_t*>("v"), 1);
    std::vector<flatbuffers::Offset<Change>> changes{CreateChange(fbb, table, Op::PUT, key, value)};
    auto vec = fbb.CreateVector(changes);
    ChangeModelBuilder b(fbb);
    b.add_flag(f.flag);
    b.add_generation(7);
    b.add_first_seq(f.first);
    b.add_last_seq(f.last);
    b.add_snapshot_seq(f.snapshot);
    b.add_changes(vec);
    auto model = b.Finish();
    fbb.Finish(CreateFrame(fbb, Message::ChangeModel, model.Union()), FrameIdentifier());
    Built out;
    out.storage.resize(fbb.GetSize() / 8 + 1);
    std::memcpy(out.storage.data(), fbb.GetBufferPointer(), fbb.GetSize());
    auto frame = verifyFrame(Bytes(out.storage.data(), fbb.GetSize()));
    REQUIRE(frame.ok());
    out.cm = asChangeModel(*frame);
    REQUIRE(out.cm != nullptr);
    return out;
}

}  // namespace

TEST_CASE("checkSeqFields: what the master sends passes") {
    ChangeModelWriter w;
    w.put("menu", Bytes("k"), Bytes("v"));
    Bytes inc = w.finishIncremental(7, 42, 42);
    std::vector<uint64_t> a(inc.size / 8 + 1);
    std::memcpy(a.data(), inc.data, inc.size);
    CHECK(checkSeqFields(asChangeModel(*verifyFrame(Bytes(a.data(), inc.size)))).ok());

    ChangeModelWriter f;
    f.put("menu", Bytes("k"), Bytes("v"));
    Bytes full = f.finishFull(7, 42, 3, false, {});
    std::vector<uint64_t> b(full.size / 8 + 1);
    std::memcpy(b.data(), full.data, full.size);
    CHECK(checkSeqFields(asChangeModel(*verifyFrame(Bytes(b.data(), full.size)))).ok());
    // A FULL of an empty master is read at seq 0.
    CHECK(checkSeqFields(build({SyncMode::FULL, 0, 0, 0}).cm).ok());
}

TEST_CASE("checkSeqFields: a range the model does not carry is refused as corrupt") {
    struct Case {
        const char* what;
        Fields f;
    };
    const Case cases[] = {
        // One flipped bit in last_seq: what a slave once applied, moving its position to 2^60.
        {"INCREMENTAL with last_seq 2^60 + 42", {SyncMode::INCREMENTAL, 42, (uint64_t(1) << 60) + 42, 0}},
        {"INCREMENTAL covering two transactions", {SyncMode::INCREMENTAL, 42, 43, 0}},
        {"INCREMENTAL with last_seq below first_seq", {SyncMode::INCREMENTAL, 42, 41, 0}},
        {"INCREMENTAL of seq 0 (no transaction has it)", {SyncMode::INCREMENTAL, 0, 0, 0}},
        {"INCREMENTAL with a snapshot_seq", {SyncMode::INCREMENTAL, 42, 42, 42}},
        {"FULL with first_seq off snapshot_seq", {SyncMode::FULL, 41, 42, 42}},
        {"FULL with last_seq off snapshot_seq", {SyncMode::FULL, 42, 43, 42}},
        {"FULL with snapshot_seq off its range", {SyncMode::FULL, 42, 42, (uint64_t(1) << 60) + 42}},
    };
    for (const auto& c : cases) {
        INFO(c.what);
        auto b = build(c.f);
        auto st = checkSeqFields(b.cm);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::Corrupt);
    }
}
