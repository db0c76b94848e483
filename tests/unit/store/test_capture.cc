// Change capture: one log entry per committed transaction touching a watched table, same txn.
#include <doctest/doctest.h>

#include "fixture.h"
#include "wire/change_model.h"

using namespace possync;
using namespace possync::test;

namespace {

// Reads the log entries from `from` as verified ChangeModels (seq, changes count).
std::vector<std::pair<uint64_t, size_t>> logEntries(store::Store& s, uint64_t from = 1) {
    std::vector<std::pair<uint64_t, size_t>> out;
    REQUIRE_OK(s.readLog(from, 1000000, SIZE_MAX, [&](uint64_t seq, Bytes frame) {
        flatbuffers::Verifier v(frame.data, frame.size);
        REQUIRE(wire::VerifyFrameBuffer(v));
        const wire::ChangeModel* cm = wire::asChangeModel(wire::GetFrame(frame.data));
        REQUIRE(cm != nullptr);
        CHECK(cm->first_seq() == seq);
        CHECK(cm->last_seq() == seq);
        CHECK(cm->flag() == wire::SyncMode::INCREMENTAL);
        out.emplace_back(seq, cm->changes() ? cm->changes()->size() : 0);
        return true;
    }));
    return out;
}

}  // namespace

TEST_CASE("a committed write to a watched table appends exactly one log entry") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"menu", "orders"}));
    auto base = s->meta()->seq;  // the watch change itself is entry 1
    CHECK(base == 1);

    auto w = s->beginWrite();
    REQUIRE_OK(w);
    REQUIRE_OK(w->put("menu", Bytes("burger"), Bytes("5.50")));
    REQUIRE_OK(w->put("menu", Bytes("fries"), Bytes("2.10")));
    REQUIRE_OK(w->put("orders", Bytes("o1"), Bytes("burger")));
    REQUIRE_OK(w->put("local", Bytes("printer"), Bytes("lp0")));  // unwatched
    auto seq = w->commit();
    REQUIRE_OK(seq);
    CHECK(*seq == base + 1);

    auto entries = logEntries(*s, base + 1);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].first == base + 1);
    CHECK(entries[0].second == 3);  // the unwatched put is not captured
    CHECK(s->meta()->seq == base + 1);
}

TEST_CASE("writes to unwatched tables only change data, not the log") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"menu"}));
    auto w = s->beginWrite();
    REQUIRE_OK(w->put("local", Bytes("k"), Bytes("v")));
    auto seq = w->commit();
    REQUIRE_OK(seq);
    CHECK(*seq == 0);
    CHECK(s->meta()->seq == 1);
    CHECK(s->logInfo()->entries == 1);
    auto r = s->beginRead();
    CHECK(r->get("local", Bytes("k"))->value().view() == "v");
}

TEST_CASE("an aborted transaction leaves neither data nor log entry") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"menu"}));
    {
        auto w = s->beginWrite();
        REQUIRE_OK(w->put("menu", Bytes("burger"), Bytes("5.50")));
        w->abort();
    }
    {
        auto w = s->beginWrite();
        REQUIRE_OK(w->put("menu", Bytes("pizza"), Bytes("9")));
        // destroyed without commit: aborted
    }
    CHECK(s->meta()->seq == 1);
    CHECK(s->logInfo()->entries == 1);
    auto r = s->beginRead();
    auto v = r->get("menu", Bytes("burger"));
    // the table itself may not exist: either way no data
    CHECK((!v.ok() || !v->has_value()));
}

TEST_CASE("seq is gap-free across many transactions and reopen") {
    TempDir d;
    uint64_t gen = 0;
    {
        auto s = openStore(d.path());
        REQUIRE_OK(s->setWatchedTables({"t"}));
        gen = s->meta()->generation;
        for (int i = 0; i < 50; ++i) {
            auto w = s->beginWrite();
            REQUIRE_OK(w->put("t", Bytes("k" + std::to_string(i)), Bytes("v")));
            if (i % 7 == 3) REQUIRE(w->del("t", Bytes("k0")).ok());
            REQUIRE_OK(w->commit());
        }
    }
    auto s = openStore(d.path());
    CHECK(s->meta()->generation == gen);  // survives reopen
    auto entries = logEntries(*s);
    REQUIRE(entries.size() == 51);
    for (size_t i = 0; i < entries.size(); ++i) CHECK(entries[i].first == i + 1);
    CHECK(s->meta()->seq == 51);
}

TEST_CASE("a del of an absent key changes nothing and logs nothing") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    auto w = s->beginWrite();
    auto r = w->del("t", Bytes("nope"));
    REQUIRE_OK(r);
    CHECK_FALSE(*r);
    CHECK(*w->commit() == 0);
}

TEST_CASE("the listening configuration: a newly watched table cuts history, an unwatched one stops logging") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"menu"}));
    {
        auto w = s->beginWrite();
        REQUIRE_OK(w->put("stock", Bytes("fries"), Bytes("100")));
        CHECK(*w->commit() == 0);
    }
    REQUIRE_OK(s->setWatchedTables({"menu", "stock"}));
    auto m = s->meta();
    CHECK(m->resyncSeq == m->seq);  // positions before this need FULL
    CHECK(m->isWatched("stock"));
    REQUIRE_OK(s->setWatchedTables({"stock"}));
    auto w = s->beginWrite();
    REQUIRE_OK(w->put("menu", Bytes("a"), Bytes("1")));
    CHECK(*w->commit() == 0);  // menu no longer replicates
    // setting the same list again is not a change
    auto before = s->meta()->seq;
    REQUIRE_OK(s->setWatchedTables({"stock"}));
    CHECK(s->meta()->seq == before);
}

TEST_CASE("in-process commit listeners are called after commit with the new seq") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    std::vector<uint64_t> seen;
    int id = s->addCommitListener([&](uint64_t seq) { seen.push_back(seq); });
    auto w = s->beginWrite();
    REQUIRE_OK(w->put("t", Bytes("k"), Bytes("v")));
    CHECK(seen.empty());
    REQUIRE_OK(w->commit());
    s->removeCommitListener(id);
    auto w2 = s->beginWrite();
    REQUIRE_OK(w2->put("t", Bytes("k"), Bytes("v2")));
    REQUIRE_OK(w2->commit());
    REQUIRE(seen.size() == 1);
    CHECK(seen[0] == 2);
}

TEST_CASE("a transaction whose change model exceeds the frame limit is refused whole") {
    TempDir d;
    store::StoreOptions o;
    o.maxChangeModelBytes = 64 * 1024;
    auto s = openStore(d.path(), o);
    REQUIRE_OK(s->setWatchedTables({"t"}));
    auto w = s->beginWrite();
    std::string big(1000, 'x');
    Status last;
    for (int i = 0; i < 200 && last.ok(); ++i) last = w->put("t", Bytes("k" + std::to_string(i)), Bytes(big));
    REQUIRE_FALSE(last.ok());
    CHECK(last.error().code == Errc::TooLarge);
    auto c = w->commit();
    REQUIRE_FALSE(c.ok());
    CHECK(c.error().code == Errc::TooLarge);
    CHECK(s->meta()->seq == 1);
    CHECK(s->beginRead()->entries("t").ok() == false);  // nothing committed, table not created
}

TEST_CASE("tables() lists every watched table, written or not, with entries and digests") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"menu", "orders"}));
    auto w = s->beginWrite();
    REQUIRE_OK(w->put("menu", Bytes("a"), Bytes("1")));
    REQUIRE_OK(w->put("local", Bytes("b"), Bytes("2")));
    REQUIRE_OK(w->commit());
    auto t = s->tables();
    REQUIRE_OK(t);
    REQUIRE(t->size() == 3);
    CHECK((*t)[0].name == "local");
    CHECK_FALSE((*t)[0].watched);
    CHECK((*t)[1].name == "menu");
    CHECK((*t)[1].entries == 1);
    CHECK((*t)[1].digest != 0);
    CHECK((*t)[2].name == "orders");
    CHECK((*t)[2].watched);
    CHECK((*t)[2].entries == 0);
}
