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

// Issue 9 item 8: a rebuilt chunk keeps its key range, so writes into that range since the
// first build used to make it as large as they liked (the whole growth of the table for the
// last chunk): a frame past the slave's --max-frame. Every chunk obeys the size now.
TEST_CASE("a rebuilt chunk never exceeds the chunk size: the snapshot is retired instead") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    auto put = [&](int from, int to, int step) {
        auto w = s->beginWrite();
        for (int i = from; i < to; i += step) {
            char k[16];
            snprintf(k, sizeof k, "k%05d", i);
            REQUIRE_OK(w->put("t", Bytes(k), Bytes(std::string(100, 'o'))));
        }
        REQUIRE_OK(w->commit());
    };
    put(0, 3000, 10);  // 300 records of ~140 bytes: about 11 chunks of 4 KiB
    const size_t cap = 4096;
    sync::Snapshot snap(*s, s->meta()->generation, {"t"}, cap);
    std::vector<sync::Chunk> held;
    for (uint32_t n = 0;; ++n) {
        auto c = snap.chunk(n);
        REQUIRE_OK(c);
        held.push_back(*c);
        if (c->last) break;
        REQUIRE(n < 100);
    }
    REQUIRE(held.size() > 3);
    const uint32_t last = uint32_t(held.size() - 1);
    std::map<std::pair<std::string, std::string>, std::string> one;
    collect(held[1], one);
    const std::string firstKey = one.begin()->first.second;  // chunk 1's range starts here
    // Chunks 1 and the last are dropped by every session; chunk 0 stays held (joinable).
    held[1] = sync::Chunk{};
    held[last] = sync::Chunk{};
    REQUIRE(snap.joinable());
    // Many keys land inside chunk 1's range (between its keys) and after the last key.
    {
        auto w = s->beginWrite();
        for (int i = 0; i < 200; ++i) {
            std::string k = firstKey + "-" + std::to_string(1000 + i);
            REQUIRE_OK(w->put("t", Bytes(k), Bytes(std::string(100, 'n'))));
        }
        REQUIRE_OK(w->commit());
    }
    put(5000, 9000, 10);

    for (uint32_t n : {uint32_t(1), last}) {
        INFO("chunk " << n);
        auto again = snap.chunk(n);
        if (again.ok()) {
            // (The old code sent it, whatever its size.)
            CHECK(again->frame->size() <= cap + 2048);
        } else {
            CHECK(again.error().code == Errc::TooLarge);
        }
        CHECK_FALSE(again.ok());
    }
    // A retired snapshot takes no new session, even with chunk 0 still held.
    CHECK(held[0].frame != nullptr);
    CHECK_FALSE(snap.joinable());
    // A chunk that still fits is rebuilt as before.
    held[2] = sync::Chunk{};
    auto c2 = snap.chunk(2);
    REQUIRE_OK(c2);
    CHECK(c2->frame->size() <= cap + 2048);
}
