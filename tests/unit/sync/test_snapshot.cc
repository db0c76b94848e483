// Snapshot chunks: bounded size, fixed boundaries, shared frames, rebuilt chunks keep boundaries.
#include <doctest/doctest.h>

#include <map>

#include "../store/fixture.h"
#include "sync/snapshot.h"
#include "wire/change_model.h"
#include "wire/frame.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::test;

namespace {
// Decodes a chunk frame into (table, key) -> value. The frame goes through a FrameDecoder as on
// a slave: its header (length and checksums) must be valid.
void collect(const sync::Chunk& c, std::map<std::pair<std::string, std::string>, std::string>& out) {
    std::vector<uint8_t> payload;
    wire::FrameDecoder decoder;
    REQUIRE(decoder
                .feed(Bytes(c.frame->data(), c.frame->size()),
                      [&](Bytes p) {
                          payload.assign(p.data, p.data + p.size);
                          return Status();
                      })
                .ok());
    REQUIRE(decoder.framesDecoded() == 1);
    REQUIRE(decoder.buffered() == 0);
    auto f = wire::verifyFrame(Bytes(payload.data(), payload.size()));
    REQUIRE(f.ok());
    const wire::ChangeModel* cm = (*f)->message_as_ChangeModel();
    REQUIRE(cm != nullptr);
    CHECK(cm->flag() == wire::SyncMode::FULL);
    CHECK(cm->chunk() == c.number);
    CHECK(cm->last_chunk() == c.last);
    CHECK(cm->snapshot_seq() == c.readSeq);
    for (auto* ch : *cm->changes()) {
        auto k = std::make_pair(std::string(wire::tableOf(ch)), wire::keyOf(ch).str());
        CHECK(out.count(k) == 0);  // no key in two chunks
        out[k] = wire::valueOf(ch).str();
    }
}
}  // namespace

TEST_CASE("a snapshot covers every watched table exactly once in bounded chunks") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"a", "b", "empty"}));
    std::map<std::pair<std::string, std::string>, std::string> expect;
    auto w = s->beginWrite();
    for (int i = 0; i < 2000; ++i) {
        std::string k = "key" + std::to_string(i), v(50, char('a' + i % 26));
        REQUIRE_OK(w->put(i % 3 ? "a" : "b", Bytes(k), Bytes(v)));
        expect[{i % 3 ? "a" : "b", k}] = v;
    }
    REQUIRE_OK(w->put("unwatched", Bytes("x"), Bytes("y")));
    REQUIRE_OK(w->commit());
    sync::Snapshot snap(*s, s->meta()->generation, s->meta()->watched, 8 * 1024);
    std::map<std::pair<std::string, std::string>, std::string> got;
    uint32_t n = 0;
    std::vector<sync::Chunk> held;
    while (true) {
        auto c = snap.chunk(n);
        REQUIRE_OK(c);
        CHECK(c->frame->size() < 8 * 1024 + 2048);
        collect(*c, got);
        held.push_back(*c);
        ++n;
        if (c->last) break;
        REQUIRE(n < 1000);
    }
    CHECK(n > 5);
    CHECK(got == expect);
    CHECK(snap.firstSeq() == s->meta()->seq);
    // While chunk 0 is held another session can join and gets the same frames.
    CHECK(snap.joinable());
    auto again = snap.chunk(1);
    REQUIRE_OK(again);
    CHECK(again->shared);
    CHECK(again->frame.get() == held[1].frame.get());
    held.clear();
    again = sync::Chunk{};
    CHECK_FALSE(snap.joinable());
}

TEST_CASE("a dropped chunk is read again with its boundaries and newer data") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    {
        auto w = s->beginWrite();
        for (int i = 0; i < 300; ++i) {
            char k[16];
            snprintf(k, sizeof k, "k%04d", i * 10);
            REQUIRE_OK(w->put("t", Bytes(k), Bytes(std::string(100, 'o'))));
        }
        REQUIRE_OK(w->commit());
    }
    sync::Snapshot snap(*s, s->meta()->generation, {"t"}, 4096);
    auto c0 = snap.chunk(0);
    auto c1 = snap.chunk(1);
    auto c2 = snap.chunk(2);
    REQUIRE_OK(c2);
    std::map<std::pair<std::string, std::string>, std::string> before;
    collect(*c1, before);
    uint64_t oldSeq = c1->readSeq;
    c1 = sync::Chunk{};  // nobody holds chunk 1 any more
    // A key inside chunk 1's range and one in chunk 2's range appear.
    std::string inside = before.begin()->first.second + "5";
    {
        auto w = s->beginWrite();
        REQUIRE_OK(w->put("t", Bytes(inside), Bytes("new")));
        REQUIRE_OK(w->commit());
    }
    auto again = snap.chunk(1);
    REQUIRE_OK(again);
    CHECK_FALSE(again->shared);
    CHECK(again->readSeq > oldSeq);
    std::map<std::pair<std::string, std::string>, std::string> after;
    collect(*again, after);
    CHECK(after.size() == before.size() + 1);
    CHECK(after[{"t", inside}] == "new");
    // It did not run into chunk 2's keys.
    std::map<std::pair<std::string, std::string>, std::string> third;
    collect(*c2, third);
    for (auto& [k, v] : third) CHECK(after.count(k) == 0);
}
