// Failover through the sync layer (DESIGN.md §10), no sockets: a slave promoted with the store's
// own promote() serves the others over real MasterSessions. A slave left behind at the old
// generation continues INCREMENTAL across the fork; one that went past the fork takes a FULL and
// reports what it discarded; terms keep a superseded master from serving or being followed.
#include <doctest/doctest.h>

#include <regex>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::ReplicaState;
using sync::SessionState;

namespace {

// A session of `host` over a scripted link, already started; its probe in `probe`.
std::unique_ptr<sync::MasterSession> sessionOf(TestHost& host, std::shared_ptr<LinkProbe>& probe,
                                               uint64_t id) {
    probe = std::make_shared<LinkProbe>();
    auto s = std::make_unique<sync::MasterSession>(host, std::make_unique<ScriptedLink>(probe), id);
    REQUIRE_OK(s->start());
    return s;
}

// `slave` connects to `host` and both talk until quiet; the link stays up.
struct Linked {
    std::shared_ptr<LinkProbe> masterProbe, slaveProbe;
    std::unique_ptr<sync::MasterSession> session;
};

Linked link(TestHost& host, SlaveSide& slave, uint64_t id) {
    Linked l;
    l.slaveProbe = slave.connect();
    l.session = sessionOf(host, l.masterProbe, id);
    pumpBetween(*l.masterProbe, *slave.replica, *l.slaveProbe, *l.session);
    return l;
}

void unlink(SlaveSide& slave, Linked& l) {
    slave.replica->onClosed(Status());
    l.session.reset();
    REQUIRE(slave.replica->state() == ReplicaState::Backoff);
}

void put(store::Store& s, const std::string& k, const std::string& v) {
    auto w = s.beginWrite();
    REQUIRE_OK(w);
    REQUIRE_OK(w->put("t", Bytes(k), Bytes(v)));
    REQUIRE_OK(w->commit());
}

store::WatchedDigest digestOf(store::Store& s) {
    auto d = s.watchedDigest();
    REQUIRE_OK(d);
    return *d;
}

}  // namespace

TEST_CASE("after a promotion, a slave behind the fork resumes INCREMENTAL and one past it takes a FULL") {
    MasterSide a(10);  // the old master, generation A
    const uint64_t genA = a.generation();
    const uint64_t h0 = a.head(), fork = h0 + 5, past = fork + 3, head = fork + 2;
    SlaveSide p, q, r;  // p is promoted; q stays behind the fork; r goes past it

    auto lp = link(a.host, p, 1);
    auto lq = link(a.host, q, 2);
    REQUIRE(q.replica->status().position == h0);
    unlink(q, lq);  // q hears nothing more of A

    a.commit(5);  // h0+1 .. fork: p receives them through its log
    lp.session->pump();
    pumpBetween(*lp.masterProbe, *p.replica, *lp.slaveProbe, *lp.session);
    REQUIRE(p.replica->status().position == fork);
    unlink(p, lp);  // A dies for p at the fork

    auto lr = link(a.host, r, 3);
    a.commit(3);  // fork+1 .. past: only r gets them
    lr.session->pump();
    pumpBetween(*lr.masterProbe, *r.replica, *lr.slaveProbe, *lr.session);
    REQUIRE(r.replica->status().position == past);
    unlink(r, lr);

    // The operator promotes p; it takes two new writes.
    p.replica->stop();
    auto promoted = p.store->promote();
    REQUIRE_OK(promoted);
    CHECK(promoted->parent == genA);
    CHECK(promoted->forkSeq == fork);
    CHECK(promoted->term == 1);
    const uint64_t genB = promoted->generation;
    put(*p.store, "after-1", "x");
    put(*p.store, "after-2", "y");
    REQUIRE(p.store->meta()->seq == head);
    TestHost hostP(*p.store);

    SUBCASE("a slave behind the fork continues INCREMENTAL into the new generation") {
        const uint64_t fullBefore = q.replica->stats().fullSyncs;
        std::shared_ptr<LinkProbe> mp;
        auto sq = q.connect();
        auto helloBytes = sq->take();
        auto hello = decodeFrames(helloBytes);
        REQUIRE(hello.size() == 1);
        CHECK(hello[0].frame()->message_as_Hello()->term() == 0);
        CHECK(wire::positionOf(hello[0].frame()->message_as_Hello()->position()).generation() == genA);
        auto session = sessionOf(hostP, mp, 4);
        session->onData(Bytes(helloBytes.data(), helloBytes.size()));
        auto answer = mp->take();
        auto msgs = decodeFrames(answer);
        REQUIRE_FALSE(msgs.empty());
        auto* w = welcomeOf(msgs[0]);
        CHECK(w->mode() == wire::SyncMode::INCREMENTAL);
        CHECK(w->generation() == genB);
        CHECK(w->term() == 1);
        REQUIRE(w->lineage());
        REQUIRE(w->lineage()->size() == 1);
        CHECK(w->lineage()->Get(0)->generation() == genA);
        CHECK(w->lineage()->Get(0)->seq() == fork);
        // Entries up to the fork keep generation A; after it, B.
        int models = 0;
        for (const auto& m : msgs)
            if (m.type() == wire::Message::ChangeModel) {
                auto* cm = m.frame()->message_as_ChangeModel();
                CHECK(cm->generation() == (cm->first_seq() <= fork ? genA : genB));
                ++models;
            }
        CHECK(models > 0);
        q.replica->onData(Bytes(answer.data(), answer.size()));
        pumpBetween(*mp, *q.replica, *sq, *session);
        CHECK(q.replica->state() == ReplicaState::Streaming);
        CHECK(q.replica->status().position == head);
        CHECK(q.replica->status().generation == genB);
        CHECK(q.replica->status().masterTerm == 1);
        CHECK(q.replica->stats().fullSyncs == fullBefore);  // no FULL
        CHECK(hostP.snapshotsMade == 0);
        CHECK(session->info().ackedSeq == head);  // Acks of generation A below the fork were taken
        CHECK(digestOf(*q.store).digest == digestOf(*p.store).digest);
        CHECK(q.get("after-2") == "y");
        // q now knows the lineage and the term: it could be promoted in turn.
        auto m = q.store->meta();
        REQUIRE_OK(m);
        CHECK(m->generation == genB);
        CHECK(m->term == 1);
        CHECK(m->highestTermSeen == 1);
        REQUIRE(m->history.size() == 2);
        CHECK(m->history.back() == store::HistoryRecord{genB, genA, fork, 1});
        CHECK(m->history.front().generation == genA);

        // The old master comes back: q's Hello says term 1, A (term 0) refuses and learns it.
        q.replica->onClosed(Status());
        session.reset();
        auto sq2 = q.connect();
        std::shared_ptr<LinkProbe> ap;
        auto old = sessionOf(a.host, ap, 5);
        pumpBetween(*ap, *q.replica, *sq2, *old);
        CHECK(old->closed());
        CHECK(a.host.supersededTerm == 1);
        CHECK(a.host.supersededDevice == "slave-dev");
        CHECK(a.host.snapshotsMade == 3);  // p, q and r's FULLs of before; none now
        CHECK(q.replica->state() == ReplicaState::Backoff);
        CHECK(std::regex_search(q.replica->status().waitingReason, std::regex("term 0 .*term 1")));
        CHECK(q.replica->status().position == head);
    }

    SUBCASE("a slave past the fork takes a FULL without the operator and says what it discarded") {
        auto l = link(hostP, r, 6);
        CHECK(r.replica->state() == ReplicaState::Streaming);
        CHECK(hostP.snapshotsMade == 1);
        CHECK(r.replica->status().position == head);
        CHECK(r.replica->status().generation == genB);
        CHECK(std::regex_search(r.replica->status().discarded,
                                std::regex("^3 change\\(s\\) this board held past seq " +
                                           std::to_string(fork) + " .*discards them")));
        CHECK(r.replica->stats().errors["discarded_past_fork"] == 1);
        CHECK(digestOf(*r.store).digest == digestOf(*p.store).digest);
        CHECK(r.get("k17") == "<none>");  // A's 18th put, after the fork: gone here
        CHECK(r.get("after-1") == "x");
    }
}

TEST_CASE("a Welcome of a lower term than this board has seen is refused, whatever its generation") {
    SlaveSide s;
    REQUIRE_OK(s.store->noteTerm(3));
    // (A fresh Replica reads the term at creation: make one over the same store.)
    sync::ReplicaConfig rc;
    rc.storeId = "store1";
    rc.deviceId = "slave-dev";
    auto replica = sync::Replica::create(s.time, s.time, s.connector, *s.store, s.locator, rc);
    REQUIRE_OK(replica);
    s.replica = std::move(*replica);
    auto probe = s.connect();
    auto hello = sentMessages(*probe);
    REQUIRE(hello.size() == 1);
    CHECK(hello[0].frame()->message_as_Hello()->term() == 3);
    deliver(*s.replica, welcome(wire::SyncMode::FULL));  // term 0
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::SUPERSEDED);
    CHECK(std::regex_search(s.replica->status().waitingReason,
                            std::regex("is of term 0, this board has seen term 3: not following")));
    CHECK_FALSE(s.store->meta()->synced);
}

TEST_CASE("a master refuses a slave that has seen a higher term and reports it") {
    MasterSide m(3);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    auto h = m.hello(true, m.generation(), 3);
    h.term = 2;
    deliver(*s, wire::buildHello(h));
    CHECK(s->closed());
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 1);
    CHECK(welcomeOf(msgs[0])->refused());
    CHECK(welcomeOf(msgs[0])->code() == wire::ErrorCode::SUPERSEDED);
    CHECK(m.host.supersededTerm == 2);
    CHECK(m.host.snapshotsMade == 0);
    CHECK(m.host.statsValue.errors["superseded"] == 1);
}

TEST_CASE("an Ack naming an ancestor generation past its fork is a protocol error") {
    // A master promoted from generation A at seq 2: Acks of A are valid up to 2 only.
    MasterSide a(2);
    SlaveSide p;
    auto l = link(a.host, p, 1);
    unlink(p, l);
    p.replica->stop();
    auto promoted = p.store->promote();
    REQUIRE_OK(promoted);
    put(*p.store, "n1", "1");
    put(*p.store, "n2", "2");
    TestHost hostP(*p.store);
    std::shared_ptr<LinkProbe> mp;
    auto s = sessionOf(hostP, mp, 2);
    wire::HelloFields h = a.hello(true, a.generation(), a.head());
    deliver(*s, wire::buildHello(h));
    REQUIRE(s->state() == SessionState::Streaming);
    const uint64_t fork = promoted->forkSeq;
    deliver(*s, wire::buildAck(wire::Position(a.generation(), fork)));  // at the fork: fine
    CHECK_FALSE(s->closed());
    deliver(*s, wire::buildAck(wire::Position(a.generation(), fork + 1)));  // generation B's seq
    CHECK(s->closed());
    CHECK(lastError(sentMessages(*mp)) == wire::ErrorCode::PROTOCOL);
}

TEST_CASE("a slave at the fork of a master with no new writes takes the new generation at once") {
    MasterSide a(4);
    SlaveSide p, q;
    auto lp = link(a.host, p, 1);
    auto lq = link(a.host, q, 2);
    unlink(p, lp);
    unlink(q, lq);
    p.replica->stop();
    auto promoted = p.store->promote();
    REQUIRE_OK(promoted);
    TestHost hostP(*p.store);
    auto l = link(hostP, q, 3);  // q is at the fork, which is the new master's head
    CHECK(q.replica->state() == ReplicaState::Streaming);
    CHECK(hostP.snapshotsMade == 0);
    auto m = q.store->meta();
    REQUIRE_OK(m);
    // Its position names the new generation (the same data), so it compares equal with the
    // master's, and it knows the lineage.
    CHECK(m->generation == promoted->generation);
    CHECK(m->seq == promoted->forkSeq);
    CHECK(m->history.back() ==
          store::HistoryRecord{promoted->generation, a.generation(), promoted->forkSeq, 1});
    CHECK(digestOf(*q.store).generation == digestOf(*p.store).generation);
    CHECK(digestOf(*q.store).digest == digestOf(*p.store).digest);
}
