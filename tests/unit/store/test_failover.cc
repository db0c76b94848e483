// Failover at the store layer (DESIGN.md §10), no daemon: the test plays the sync layer by hand.
// What must hold: a slave keeps the master's log entries byte for byte (and trims it); a FULL
// empties that log and carries possync.clients/results; promote starts a child generation that
// continues the log and drains the board's own outbox exactly once; resumePlan walks the
// history; a fenced board takes no write; exportSince writes what a new master never got.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "by_hand.h"
#include "store/history.h"

using namespace possync;
using namespace possync::test;
using store::HistoryRecord;
using store::ResumePlan;

namespace {

const std::vector<std::string> kShared = {"orders", "stock"};

std::optional<std::string> get(store::Store& s, const std::string& table, const std::string& k) {
    auto r = s.beginRead();
    REQUIRE_OK(r);
    auto v = r->get(table, Bytes(k));
    if (!v.ok() || !*v) return std::nullopt;
    return (*v)->str();
}

// Slave `s`'s outbox forwarded to the master (the daemon's part), then replicated back.
std::vector<store::RequestOutcome> forward(store::Store& master, store::Store& slave) {
    std::vector<std::string> frames;
    REQUIRE_OK(slave.readOutbox(0, [&](uint64_t, Bytes frame) {
        frames.push_back(frame.str());
        return true;
    }));
    std::vector<store::RequestOutcome> out;
    for (auto& frame : frames) {
        auto f = wire::verifyFrame(Bytes(frame));
        REQUIRE_OK(f);
        auto o = master.applyRequest(wire::asWriteRequest(*f));
        REQUIRE_OK(o);
        out.push_back(*o);
    }
    return out;
}

struct Store3 {
    Board master{"master", false}, a{"till1", true}, b{"till2", true};
    Store3() {
        REQUIRE_OK(master.s->setWatchedTables(kShared));
        fullSync(*master.s, *a.s);
        fullSync(*master.s, *b.s);
    }
};

}  // namespace

TEST_CASE("history: encoding round trip, bounded to the last 16 records") {
    std::vector<HistoryRecord> h;
    for (uint64_t i = 1; i <= 20; ++i) store::pushHistory(h, HistoryRecord{i, i - 1, i * 10, i});
    CHECK(h.size() == store::kMaxHistory);
    CHECK(h.front().generation == 5);
    auto back = store::decodeHistory(Bytes(store::encodeHistory(h)));
    REQUIRE_OK(back);
    CHECK(*back == h);
    CHECK_FALSE(store::decodeHistory(Bytes("short")).ok());
}

TEST_CASE("planResume walks the chain of forks") {
    store::ResumeView v;
    v.history = {{1, 0, 0, 0}, {2, 1, 100, 1}, {3, 2, 150, 2}};
    v.generation = 3;
    v.head = 200;
    v.logFirst = 50;
    auto p = store::planResume(v, 3, 180);
    CHECK((p.kind == ResumePlan::Incremental && p.fromSeq == 181));
    p = store::planResume(v, 2, 150);  // exactly at the fork: nothing of it is lost
    CHECK((p.kind == ResumePlan::Incremental && p.fromSeq == 151));
    p = store::planResume(v, 1, 90);
    CHECK((p.kind == ResumePlan::Incremental && p.fromSeq == 91));
    p = store::planResume(v, 1, 120);  // generation 1 is shared with 3 only up to 100
    CHECK(p.kind == ResumePlan::Full);
    CHECK(p.discarded == 20);
    CHECK(p.forkSeq == 100);
    p = store::planResume(v, 2, 160);
    CHECK((p.kind == ResumePlan::Full && p.discarded == 10));
    CHECK(store::planResume(v, 99, 10).kind == ResumePlan::Full);  // unrelated
    CHECK(store::planResume(v, 1, 40).kind == ResumePlan::Full);   // trimmed
    CHECK(store::planResume(v, 3, 201).kind == ResumePlan::Full);  // ahead of the head
    v.history = {{2, 1, 100, 1}, {3, 2, 150, 2}};  // generation 1's record dropped: still known as parent
    CHECK(store::planResume(v, 1, 90).kind == ResumePlan::Incremental);
}

TEST_CASE("ancestry: what the Welcome carries, and the history a slave rebuilds from it") {
    std::vector<HistoryRecord> h = {{1, 0, 0, 0}, {2, 1, 100, 1}, {3, 2, 150, 2}};
    auto a = store::ancestryOf(h);
    REQUIRE(a.size() == 2);
    CHECK(a[0] == store::Ancestor{2, 150});
    CHECK(a[1] == store::Ancestor{1, 100});
    // Rebuilt: the same chain; ancestors' terms are not on the wire.
    auto back = store::historyFromAncestry(3, 2, a);
    REQUIRE(back.size() == 3);
    CHECK(back[0] == HistoryRecord{1, 0, 0, 0});
    CHECK(back[1] == HistoryRecord{2, 1, 100, 0});
    CHECK(back[2] == HistoryRecord{3, 2, 150, 2});
    CHECK(store::ancestryOf(back) == a);
    CHECK(store::historyFromAncestry(7, 0, {}) == std::vector<HistoryRecord>{{7, 0, 0, 0}});
    CHECK(store::ancestryOf({{7, 0, 0, 0}}).empty());
    // A log of generation 3: entries up to 100 are generation 1's, up to 150 generation 2's.
    CHECK(store::generationAt(3, a, 1) == 1);
    CHECK(store::generationAt(3, a, 100) == 1);
    CHECK(store::generationAt(3, a, 101) == 2);
    CHECK(store::generationAt(3, a, 150) == 2);
    CHECK(store::generationAt(3, a, 151) == 3);
    CHECK(store::generationAt(9, {}, 5) == 9);
    // What each generation shares with 3 (as sharedUpTo over the full history).
    CHECK(store::sharedWith(3, a, 3) == UINT64_MAX);
    CHECK(store::sharedWith(3, a, 2) == 150);
    CHECK(store::sharedWith(3, a, 1) == 100);
    CHECK_FALSE(store::sharedWith(3, a, 4).has_value());
    for (uint64_t g : {1, 2, 3}) CHECK(store::sharedWith(3, a, g) == store::sharedUpTo(h, g));
}

TEST_CASE("a slave keeps the master's log entries as received, and trims it") {
    Board master("master", false), slave("till1", true);
    REQUIRE_OK(master.s->setWatchedTables(kShared));
    fullSync(*master.s, *slave.s);
    CHECK(slave.s->logInfo()->entries == 0);
    for (int i = 0; i < 30; ++i) put(*master.s, "orders", "k" + std::to_string(i), std::string(100, 'v'));
    replicate(*master.s, *slave.s);
    auto ml = logOf(*master.s, 2), sl = logOf(*slave.s);
    REQUIRE(sl.size() == 30);
    CHECK(sl == ml);  // same seqs, same bytes
    CHECK(slave.s->logInfo()->bytes == master.s->logInfo()->bytes - logOf(*master.s, 0)[0].second.size());
    // Without the received bytes (tools, older callers) the model is encoded again.
    put(*master.s, "orders", "x", "1");
    {
        auto f = logOf(*master.s, master.meta().seq);
        auto a = slave.s->beginApply();
        REQUIRE_OK(a->apply(wire::asChangeModel(*wire::verifyFrame(Bytes(f[0].second)))));
        REQUIRE_OK(a->setPosition(master.meta().generation, f[0].first));
        REQUIRE_OK(a->commit());
    }
    CHECK(slave.s->logInfo()->last == master.meta().seq);
    store::TrimLimits l;
    l.maxEntries = 10;
    auto removed = slave.s->trimLog(l);
    REQUIRE_OK(removed);
    CHECK(*removed == 21);
    CHECK(slave.s->logInfo()->first == master.meta().seq - 9);
    // A FULL empties it: the log starts again at the snapshot's seq.
    fullSync(*master.s, *slave.s);
    CHECK(slave.s->logInfo()->entries == 0);
    CHECK(slave.s->logInfo()->bytes == 0);
    put(*master.s, "orders", "y", "2");
    replicate(*master.s, *slave.s);
    CHECK(slave.s->logInfo()->first == master.meta().seq);
}

TEST_CASE("a slave trims the log it keeps in its apply transactions") {
    Board master("master", false);
    TempDir sd;
    store::StoreOptions o;
    o.deviceId = "till1";
    o.slaveTrim.maxEntries = 10;
    auto slave = openStore(sd.path(), o);
    REQUIRE_OK(slave->setRole(store::Role::Slave));
    REQUIRE_OK(master.s->setWatchedTables(kShared));
    fullSync(*master.s, *slave);
    for (int i = 0; i < 25; ++i) {
        put(*master.s, "orders", "k" + std::to_string(i), "v");
        if (i % 4 == 0) replicate(*master.s, *slave);
    }
    replicate(*master.s, *slave);
    auto info = slave->logInfo();
    CHECK(info->entries == 10);
    CHECK(info->last == master.meta().seq);
    uint64_t bytes = 0;
    for (auto& [seq, f] : logOf(*slave)) bytes += f.size();
    CHECK(info->bytes == bytes);
}

TEST_CASE("a FULL sync carries possync.clients and possync.results") {
    Store3 st;
    put(*st.a.s, "orders", "o1", "from till1");
    put(*st.a.s, "orders", "o2", "from till1");
    auto outcomes = forward(*st.master.s, *st.a.s);
    REQUIRE(outcomes.size() == 2);
    // till2 takes a FULL after them: it knows what the master applied for till1.
    fullSync(*st.master.s, *st.b.s);
    auto clients = st.b.s->clients();
    REQUIRE_OK(clients);
    REQUIRE(clients->size() == 1);
    CHECK((*clients)[0].device == "till1");
    CHECK((*clients)[0].lastRequest == 2);
    CHECK((*clients)[0].applied == 2);
    CHECK(*get(*st.b.s, "orders", "o2") == "from till1");
}

TEST_CASE("promote: refused before a sync and during a FULL, then a child generation") {
    Board lone("lone", true);
    auto r = lone.s->promote();
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::Refused);
    Store3 st;
    CHECK(st.master.s->promote().error().code == Errc::Refused);  // a master
    {
        auto full = st.a.s->beginFullApply();  // a FULL in progress holds DIR/possync.full
        REQUIRE_OK(full);
        auto busy = st.a.s->promote();
        REQUIRE_FALSE(busy.ok());
        CHECK(busy.error().code == Errc::Busy);
        full->abort();
    }
    for (int i = 0; i < 5; ++i) put(*st.master.s, "orders", "m" + std::to_string(i), "v");
    replicate(*st.master.s, *st.a.s);
    const store::Meta before = st.a.meta();
    REQUIRE_OK(st.a.s->noteTerm(4));
    auto p = st.a.s->promote();
    REQUIRE_OK(p);
    CHECK(p->parent == before.generation);
    CHECK(p->forkSeq == before.seq);
    CHECK(p->term == 5);
    store::Meta after = st.a.meta();
    CHECK(after.role == store::Role::Master);
    CHECK(after.generation == p->generation);
    CHECK(after.term == 5);
    REQUIRE(after.history.size() == 2);
    CHECK(after.history.back() == HistoryRecord{p->generation, before.generation, before.seq, 5});
    // The role lives in the directory from now on (possyncd --role no longer decides).
    CHECK_FALSE(before.rolePinned);
    CHECK(after.rolePinned);
    CHECK(store::roleFromData(after));
    // The log goes on at seq+1, in the new generation; the old entries stay.
    put(*st.a.s, "orders", "after", "1");
    auto log = logOf(*st.a.s);
    REQUIRE(log.size() == 6);
    CHECK(log.back().first == before.seq + 1);
    CHECK(wire::asChangeModel(*wire::verifyFrame(Bytes(log.back().second)))->generation() == p->generation);
    CHECK(wire::asChangeModel(*wire::verifyFrame(Bytes(log.front().second)))->generation() ==
          before.generation);
    // What a peer resuming on it is told.
    auto same = st.a.s->resumePlan(before.generation, before.seq - 2);
    REQUIRE_OK(same);
    CHECK((same->kind == ResumePlan::Incremental && same->fromSeq == before.seq - 1));
    auto past = st.a.s->resumePlan(before.generation, before.seq + 3);
    REQUIRE_OK(past);
    CHECK((past->kind == ResumePlan::Full && past->discarded == 3));
    CHECK(st.a.s->resumePlan(12345, 1)->kind == ResumePlan::Full);
    CHECK(st.b.s->resumePlan(before.generation, 1).error().code == Errc::Refused);
    // A fresh master: its root record.
    CHECK(st.master.meta().history == std::vector<HistoryRecord>{{st.master.meta().generation, 0, 0, 0}});
}

TEST_CASE("a slave following INCREMENTAL across the promotion records the fork") {
    Store3 st;
    put(*st.master.s, "orders", "a", "1");
    replicate(*st.master.s, *st.a.s);
    replicate(*st.master.s, *st.b.s);
    auto p = st.a.s->promote();
    REQUIRE_OK(p);
    put(*st.a.s, "orders", "b", "2");
    auto plan = st.a.s->resumePlan(st.b.meta().generation, st.b.meta().seq);
    REQUIRE_OK(plan);
    REQUIRE(plan->kind == ResumePlan::Incremental);
    replicate(*st.a.s, *st.b.s);  // its generation now the new one, through the old one's entries
    store::Meta b = st.b.meta();
    CHECK(b.generation == p->generation);
    CHECK(b.history.back() == HistoryRecord{p->generation, p->parent, p->forkSeq, 0});
    CHECK(*get(*st.b.s, "orders", "b") == "2");
}

TEST_CASE("promote drains the board's own outbox exactly once; resent requests get the stored outcome") {
    Store3 st;
    put(*st.a.s, "orders", "early", "1");
    auto sent = forward(*st.master.s, *st.a.s);  // applied by the old master ...
    REQUIRE(sent.size() == 1);
    replicate(*st.master.s, *st.a.s);  // ... and replicated: settled on till1
    CHECK(st.a.s->outboxInfo()->count == 0);
    // till2's request reaches the master; the change model reaches till1 (not till2) before the
    // master dies. till1 holds till2's client record.
    put(*st.b.s, "orders", "t2", "x");
    std::string t2request;
    REQUIRE_OK(st.b.s->readOutbox(0, [&](uint64_t, Bytes f) {
        t2request = f.str();
        return false;
    }));
    REQUIRE(forward(*st.master.s, *st.b.s).size() == 1);
    replicate(*st.master.s, *st.a.s);
    // till1 queues two more; the master dies before they are forwarded.
    {
        auto w = st.a.s->beginWrite();
        REQUIRE_OK(w->add("stock", Bytes("apples"), 5));
        REQUIRE_OK(w->commitWrite());
    }
    put(*st.a.s, "orders", "late", "2");
    CHECK(st.a.s->outboxInfo()->count == 2);
    auto p = st.a.s->promote();
    REQUIRE_OK(p);
    CHECK(p->drained == 2);
    CHECK(st.a.s->outboxInfo()->count == 0);
    CHECK(st.a.s->outboxInfo()->bytes == 0);
    CHECK(*get(*st.a.s, "orders", "late") == "2");
    CHECK(st.a.s->requestState(3)->kind == store::RequestState::Committed);
    const uint64_t head = st.a.meta().seq;
    CHECK(st.a.s->drainOwnOutbox().value() == 0);  // again: nothing left, nothing twice
    // till2 resends its request to the new master: answered from possync.results, not applied.
    auto f = wire::verifyFrame(Bytes(t2request));
    REQUIRE_OK(f);
    auto again = st.a.s->applyRequest(wire::asWriteRequest(*f));
    REQUIRE_OK(again);
    CHECK(again->duplicate);
    CHECK_FALSE(again->result.rejected);
    CHECK(st.a.meta().seq == head);
}

TEST_CASE("a promoted slave whose knowledge came by FULL answers resent requests from possync.results") {
    Store3 st;
    put(*st.b.s, "orders", "t2", "x");
    std::string req;
    REQUIRE_OK(st.b.s->readOutbox(0, [&](uint64_t, Bytes f) {
        req = f.str();
        return false;
    }));
    REQUIRE(forward(*st.master.s, *st.b.s).size() == 1);
    fullSync(*st.master.s, *st.a.s);  // till1 learns of it only through the FULL
    REQUIRE_OK(st.a.s->promote());
    const uint64_t head = st.a.meta().seq;
    auto o = st.a.s->applyRequest(wire::asWriteRequest(*wire::verifyFrame(Bytes(req))));
    REQUIRE_OK(o);
    CHECK(o->duplicate);
    CHECK(st.a.meta().seq == head);
}

TEST_CASE("fence, export of the changes after the fork, rejoin") {
    Store3 st;
    put(*st.master.s, "orders", "shared", "1");
    replicate(*st.master.s, *st.a.s);
    const uint64_t fork = st.master.meta().seq;
    put(*st.master.s, "orders", "orphan", "lost?");  // never received by anyone
    {
        auto w = st.master.s->beginWrite();
        REQUIRE_OK(w->del("orders", Bytes("shared")));
        REQUIRE_OK(w->commitWrite());
    }
    REQUIRE_OK(st.master.s->fence("store s1 has master till1 of term 1"));
    auto w = st.master.s->beginWrite();
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == Errc::Refused);
    CHECK(w.error().message.find("till1 of term 1") != std::string::npos);
    std::string path = st.master.dir.sub("orphans.txt");
    auto e = st.master.s->exportSince(fork, path);
    REQUIRE_OK(e);
    CHECK(e->entries == 2);
    CHECK(e->changes == 2);
    CHECK(e->complete);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    std::string s = text.str();
    CHECK(s.find(std::to_string(fork + 1) + "\tput\torders\t6f727068616e\t6c6f73743f\n") !=
          std::string::npos);
    CHECK(s.find(std::to_string(fork + 2) + "\tdel\torders\t736861726564\t\n") != std::string::npos);
    REQUIRE_OK(st.master.s->unfence());
    REQUIRE_OK(st.master.s->beginWrite());
    REQUIRE_OK(st.master.s->fence("again"));
    REQUIRE_OK(st.master.s->rejoinAsSlave());
    store::Meta m = st.master.meta();
    CHECK(m.role == store::Role::Slave);
    CHECK_FALSE(m.synced);
    CHECK(m.fenced.empty());
    CHECK(m.history.size() == 1);
    // A root generation at term 0 that rejoined: only the pin keeps it a slave across restarts.
    CHECK(m.term == 0);
    CHECK(m.rolePinned);
    CHECK(store::roleFromData(m));
}

TEST_CASE("a directory from before failover reads as term 0, its own root, not fenced") {
    Board old("old", false);
    REQUIRE_OK(old.s->setWatchedTables(kShared));
    {
        auto txn = lmdb::Txn::begin(old.s->env(), true);
        REQUIRE_OK(txn);
        for (const char* k : {"term", "highest_term_seen", "history", "fenced", "role_pinned"})
            REQUIRE_OK(txn->del(old.s->metaDbi(), Bytes(k)));
        REQUIRE_OK(txn->commit());
    }
    store::Meta m = old.meta();
    CHECK(m.term == 0);
    CHECK(m.fenced.empty());
    CHECK(m.history == std::vector<HistoryRecord>{{m.generation, 0, 0, 0}});
    CHECK_FALSE(m.rolePinned);
    CHECK_FALSE(store::roleFromData(m));  // possyncd --role decides, as before failover existed
    put(*old.s, "orders", "k", "v");
    CHECK(old.s->resumePlan(m.generation, m.seq)->kind == ResumePlan::Incremental);
}
