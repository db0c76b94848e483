// Issue 9 guards on a data directory: a slave's writers are refused without waiting for the
// writer lock, reads during a FULL sync do not break its transaction (MDB_BAD_DBI), a process
// that sets no map size keeps the environment's own, and a slave's watch list is the master's
// (never set locally).
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "fixture.h"
#include "wire/change_model.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::test;

namespace {

// Opens a slave's directory holding tables a, b and c (committed by an earlier process).
std::unique_ptr<store::Store> slaveWithTables(const TempDir& d) {
    {
        auto s = openStore(d.path());
        auto w = s->beginWrite();
        REQUIRE_OK(w);
        for (const char* t : {"a", "b", "c"})
            for (int i = 0; i < 10; ++i)
                REQUIRE_OK(w->put(t, Bytes("k" + std::to_string(i)), Bytes(std::string(t) + "-old")));
        REQUIRE_OK(w->commit());
        REQUIRE_OK(s->setRole(store::Role::Slave));
    }
    return openStore(d.path());
}

// One FULL chunk of `n` PUTs per table, keys k0..k(n-1) in order.
std::string fullChunk(const std::vector<std::string>& tables, int n, uint32_t chunk, bool last) {
    wire::ChangeModelWriter w;
    for (const auto& t : tables)
        for (int i = 0; i < n; ++i) w.put(t, Bytes("k" + std::to_string(i)), Bytes(t + "-new"));
    return w.finishFull(7, 1, chunk, last, tables).str();
}

const wire::ChangeModel* model(const std::string& frame) {
    auto f = wire::verifyFrame(Bytes(frame));
    REQUIRE_OK(f);
    return wire::asChangeModel(*f);
}

}  // namespace

TEST_SUITE("guards") {
    TEST_CASE("a write on a slave's directory is refused while another thread holds the writer lock") {
        TempDir d;
        auto s = slaveWithTables(d);
        auto apply = s->beginApply();  // a FULL sync in progress: the writer lock is held
        REQUIRE_OK(apply);
        // Run beginWrite on another thread: with the old order it waits for the writer lock.
        auto pending = std::async(std::launch::async, [&] {
            auto w = s->beginWrite();
            return w.ok() ? std::string("ok") : w.error().message;
        });
        // Generous bound: a refusal needs no lock at all, so it only fails when beginWrite blocks.
        bool returned = pending.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
        apply->abort();  // lets a blocked beginWrite finish so the thread can be joined
        std::string outcome = pending.get();
        CHECK_MESSAGE(returned, "beginWrite on a slave waited for the writer lock instead of refusing");
        CHECK(outcome.find("belongs to a slave board") != std::string::npos);
    }

    TEST_CASE("console reads during a FULL sync do not abort it (no MDB_BAD_DBI)") {
        TempDir d;
        auto s = slaveWithTables(d);
        auto apply = s->beginApply();
        REQUIRE_OK(apply);
        // The master watches a (existing) and fresh (a table this FULL creates).
        REQUIRE_OK(apply->beginFull({"a", "fresh"}));
        std::string c0 = fullChunk({"a", "fresh"}, 5, 0, false);
        REQUIRE_OK(apply->applyFullChunk(model(c0)));
        for (int round = 0; round < 3; ++round) {
            // What the console's tables/get/scan do between two chunks (same process, same loop).
            auto t = s->tables();
            REQUIRE_OK(t);
            bool sawFresh = false;
            for (auto& ti : *t) sawFresh = sawFresh || ti.name == "fresh";
            CHECK_FALSE(sawFresh);  // not committed yet: readers see the old data set
            auto r = s->beginRead();
            REQUIRE_OK(r);
            auto v = r->get("b", Bytes("k1"));
            REQUIRE_OK(v);
            REQUIRE(v->has_value());
            CHECK((*v)->str() == "b-old");
            auto va = r->get("a", Bytes("k1"));
            REQUIRE_OK(va);
            REQUIRE(va->has_value());
            CHECK((*va)->str() == "a-old");
            size_t n = 0;
            REQUIRE_OK(r->scan("c", Bytes(), 0, [&](Bytes, Bytes) { return ++n, true; }));
            CHECK(n == 10);
            auto nf = r->get("fresh", Bytes("k1"));
            REQUIRE_FALSE(nf.ok());
            CHECK(nf.error().code == Errc::NotFound);
            r->end();
            std::string c = fullChunk({"a", "fresh"}, 5 + round, uint32_t(round + 1), false);
            auto applied = apply->applyFullChunk(model(c));
            REQUIRE_MESSAGE(applied.ok(), (applied.ok() ? "" : applied.error().message));
        }
        REQUIRE_OK(apply->setPosition(7, 1));
        auto committed = apply->commit();
        REQUIRE_MESSAGE(committed.ok(), (committed.ok() ? "" : committed.error().message));
        auto r = s->beginRead();
        REQUIRE_OK(r);
        auto v = r->get("fresh", Bytes("k1"));
        REQUIRE_OK(v);
        REQUIRE(v->has_value());
        CHECK((*v)->str() == "fresh-new");
        auto b = r->get("b", Bytes("k1"));
        REQUIRE_OK(b);
        REQUIRE(b->has_value());
        CHECK((*b)->str() == "b-old");  // not watched: left alone
    }

    TEST_CASE("a table created by another process after open is readable") {
        TempDir d;
        auto s = openStore(d.path());
        {
            // Another process's transaction is modelled by writing before this process looks.
            auto w = s->beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->put("late", Bytes("k"), Bytes("v")));
            REQUIRE_OK(w->commit());
        }
        auto r = s->beginRead();
        REQUIRE_OK(r);
        auto v = r->get("late", Bytes("k"));
        REQUIRE_OK(v);
        REQUIRE(v->has_value());
        auto names = r->tableNames();
        REQUIRE_OK(names);
        CHECK(*names == std::vector<std::string>{"late"});
    }

    TEST_CASE("a process that sets no map size uses the size stored in the environment") {
        TempDir d;
        size_t big = store::defaultMapSize() + store::defaultMapSize() / 2;
        {
            store::StoreOptions o;
            o.mapSize = big;  // what a daemon started with a larger --map-size leaves behind
            auto s = openStore(d.path(), o);
            CHECK(s->env().mapSize() == big);
            auto w = s->beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->put("t", Bytes("k"), Bytes("v")));
            REQUIRE_OK(w->commit());
        }
        auto s = openStore(d.path());  // the C API and the tool open with StoreOptions{}
        CHECK(s->env().mapSize() == big);
    }

    TEST_CASE("a smaller explicit map size does not shrink a fuller environment") {
        TempDir d;
        std::string value(1 << 20, 'x');
        {
            store::StoreOptions o;
            o.mapSize = size_t(64) << 20;
            auto s = openStore(d.path(), o);
            for (int i = 0; i < 40; ++i) {
                auto w = s->beginWrite();
                REQUIRE_OK(w);
                REQUIRE_OK(w->put("t", Bytes("k" + std::to_string(i)), Bytes(value)));
                REQUIRE_OK(w->commit());
            }
        }
        store::StoreOptions o;
        o.mapSize = size_t(16) << 20;
        auto s = openStore(d.path(), o);
        CHECK(s->env().mapSize() == size_t(64) << 20);
        for (int i = 40; i < 52; ++i) {
            auto w = s->beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->put("t", Bytes("k" + std::to_string(i)), Bytes(value)));
            auto c = w->commit();
            REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message));
        }
    }

    TEST_CASE("a slave's watch list is the master's: setWatchedTables is refused on a slave") {
        TempDir d;
        auto s = openStore(d.path());
        REQUIRE_OK(s->setRole(store::Role::Slave));
        auto r = s->setWatchedTables({"menu"});
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::Refused);
        CHECK(s->meta()->watched.empty());
    }
}
