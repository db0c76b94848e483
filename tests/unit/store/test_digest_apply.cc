// Digests equal a from-scratch recomputation; a slave applying the master's log converges
// byte for byte; applying a change model does not allocate per record.
#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <new>
#include <random>

#include "fixture.h"
#include "store/digest.h"
#include "wire/change_model.h"

// The replacement operator new/delete below pair malloc with free; GCC cannot see that they
// replace the global ones and warns about a mismatch that is not there.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Counts C++ heap allocations made by this test process (operator new). LMDB's own page
// allocator (malloc inside liblmdb) is not counted: it is bounded by pages, not records.
static std::atomic<uint64_t> gNews{0};
void* operator new(size_t n) {
    ++gNews;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, size_t) noexcept {
    std::free(p);
}

using namespace possync;
using namespace possync::test;

namespace {

using Table = std::map<std::string, std::string>;

uint64_t recompute(const std::string& table, const Table& content) {
    uint64_t seed = store::tableSeed(table), d = 0;
    for (auto& [k, v] : content) d ^= store::entryHash(seed, Bytes(k), Bytes(v));
    return d;
}

Table readAll(store::Store& s, const std::string& table) {
    Table t;
    auto r = s.beginRead();
    REQUIRE_OK(r);
    auto st = r->scan(table, Bytes(), 0, [&](Bytes k, Bytes v) {
        t[k.str()] = v.str();
        return true;
    });
    if (!st.ok()) REQUIRE(st.error().code == Errc::NotFound);
    return t;
}

// Applies every log entry of `master` after `from` to `slave`, one ApplyTxn per entry.
void replicate(store::Store& master, store::Store& slave, uint64_t from) {
    std::vector<std::pair<uint64_t, std::string>> frames;
    REQUIRE_OK(master.readLog(from, 1000000, SIZE_MAX, [&](uint64_t seq, Bytes f) {
        frames.emplace_back(seq, f.str());
        return true;
    }));
    uint64_t gen = master.meta()->generation;
    for (auto& [seq, f] : frames) {
        auto a = slave.beginApply();
        REQUIRE_OK(a);
        REQUIRE_OK(a->apply(wire::asChangeModel(wire::GetFrame(f.data()))));
        REQUIRE_OK(a->setPosition(gen, seq));
        REQUIRE_OK(a->commit());
    }
}

}  // namespace

TEST_CASE("digests equal a recomputation after random puts, dels and clears; a slave converges") {
    TempDir dm, ds;
    auto master = openStore(dm.path());
    auto slave = openStore(ds.path());
    REQUIRE_OK(slave->setRole(store::Role::Slave));
    REQUIRE_OK(master->setWatchedTables({"a", "b"}));
    std::map<std::string, Table> model;
    std::mt19937_64 rng(42);
    for (int txnNo = 0; txnNo < 300; ++txnNo) {
        auto w = master->beginWrite();
        REQUIRE_OK(w);
        int ops = 1 + int(rng() % 20);
        for (int i = 0; i < ops; ++i) {
            std::string table = (rng() % 2) ? "a" : "b";
            std::string key = "k" + std::to_string(rng() % 50);
            unsigned dice = unsigned(rng() % 100);
            if (dice < 65) {
                std::string value(size_t(rng() % 40), char('a' + rng() % 26));
                REQUIRE_OK(w->put(table, Bytes(key), Bytes(value)));
                model[table][key] = value;
            } else if (dice < 97) {
                REQUIRE_OK(w->del(table, Bytes(key)));
                model[table].erase(key);
            } else {
                REQUIRE_OK(w->clear(table));
                model[table].clear();
            }
        }
        if (rng() % 10 == 0) {
            w->abort();  // the model must forget this transaction: rebuild from the store
            for (const char* t : {"a", "b"}) model[t] = readAll(*master, t);
            continue;
        }
        REQUIRE_OK(w->commit());
    }
    replicate(*master, *slave, 1);
    for (const char* t : {"a", "b"}) {
        Table content = readAll(*master, t);
        CHECK(content == model[t]);
        CHECK(*master->beginRead()->digest(t) == recompute(t, content));
        CHECK(readAll(*slave, t) == content);
        CHECK(*slave->beginRead()->digest(t) == *master->beginRead()->digest(t));
    }
    CHECK(slave->meta()->seq == master->meta()->seq);
    CHECK(slave->meta()->generation == master->meta()->generation);
    CHECK(slave->meta()->synced);
}

TEST_CASE("apply rejects reserved tables from the wire and leaves the database untouched") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setRole(store::Role::Slave));
    wire::ChangeModelWriter w;
    w.put("menu", Bytes("ok"), Bytes("1"));
    w.put("possync.meta", Bytes("seq"), Bytes("evil"));
    Bytes f = w.finishIncremental(1, 1, 1);
    auto a = s->beginApply();
    auto r = a->apply(wire::asChangeModel(wire::GetFrame(f.data)));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("reserved") != std::string::npos);
    REQUIRE_OK(a->setPosition(1, 1));
    REQUIRE_FALSE(a->commit().ok());
    CHECK(s->meta()->seq == 0);
    CHECK(readAll(*s, "menu").empty());
}

TEST_CASE("FULL apply: old data until commit, then exactly the snapshot") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setRole(store::Role::Slave));
    {
        wire::ChangeModelWriter w;
        w.put("menu", Bytes("old"), Bytes("1"));
        Bytes f = w.finishIncremental(7, 1, 1);
        auto a = s->beginApply();
        REQUIRE_OK(a->apply(wire::asChangeModel(wire::GetFrame(f.data))));
        REQUIRE_OK(a->setPosition(7, 1));
        REQUIRE_OK(a->commit());
    }
    auto a = s->beginApply();
    REQUIRE_OK(a->beginFull({"menu"}));
    wire::ChangeModelWriter w;
    for (int i = 0; i < 100; ++i) {
        char key[8];
        snprintf(key, sizeof key, "k%03d", i);
        w.put("menu", Bytes(key), Bytes("v"));
    }
    Bytes f = w.finishFull(9, 5, 0, true, {"menu"});
    REQUIRE_OK(a->applyFullChunk(wire::asChangeModel(wire::GetFrame(f.data))));
    // A reader (another transaction) still sees the old data set.
    CHECK(readAll(*s, "menu") == Table{{"old", "1"}});
    REQUIRE_OK(a->setPosition(9, 5));
    REQUIRE_OK(a->commit());
    auto after = readAll(*s, "menu");
    CHECK(after.size() == 100);
    CHECK(after.count("old") == 0);
    CHECK(*s->beginRead()->digest("menu") == recompute("menu", after));
    CHECK(s->meta()->generation == 9);
}

TEST_CASE("applying a change model of 10,000 records allocates no more than one of 100") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setRole(store::Role::Slave));
    auto allocationsFor = [&](int records, uint64_t seq) {
        wire::ChangeModelWriter w(size_t(records) * 64 + 1024);
        for (int i = 0; i < records; ++i) {
            uint8_t key[16];
            putBe64(key, seq);
            putBe64(key + 8, uint64_t(i));
            w.put("orders", Bytes(key, 16), Bytes(std::string(100, char('a' + i % 26))));
        }
        Bytes f = w.finishIncremental(1, seq, seq);
        std::string frame = f.str();
        auto a = s->beginApply();
        REQUIRE_OK(a);
        // Warm the table handle so both runs measure the same fixed costs.
        const wire::ChangeModel* cm = wire::asChangeModel(wire::GetFrame(frame.data()));
        uint64_t before = gNews.load();
        // The received frame given, as the replica does: logged without encoding it again.
        REQUIRE_OK(a->apply(cm, Bytes(frame)));
        uint64_t used = gNews.load() - before;
        REQUIRE_OK(a->setPosition(1, seq));
        REQUIRE_OK(a->commit());
        CHECK(a.value().changesApplied() == uint64_t(records));
        return used;
    };
    uint64_t small = allocationsFor(100, 1);
    uint64_t large = allocationsFor(10000, 2);
    MESSAGE("operator new calls: 100 records -> " << small << ", 10,000 records -> " << large);
    CHECK(large <= small);
    CHECK(large <= 4);  // the table handle entry, its name: constant
}
