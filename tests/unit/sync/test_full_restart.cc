// Item 10 (issue 9): a FULL restarted by the master while the slave replays the previous one
// is taken (the open FULL transaction aborts), not refused until a reconnect.
#include <doctest/doctest.h>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::ReplicaState;

TEST_CASE("item 10: a FULL restarted by the master during the replay is taken, not refused") {
    SlaveSide s;
    auto probe = s.connect();
    deliver(*s.replica, welcome(wire::SyncMode::FULL));
    deliver(*s.replica, chunk(0, false, 5, {{"old", "x"}}));
    deliver(*s.replica, chunk(1, true, 8, {{"p", "1"}}));  // read later: replay 6..8 follows
    REQUIRE(s.replica->state() == ReplicaState::FullReplay);
    deliver(*s.replica, change(6, "q", "2"));
    REQUIRE(s.replica->state() == ReplicaState::FullReplay);
    // The master starts over (its log was trimmed past us, or the watched set changed).
    deliver(*s.replica, chunk(0, true, 9, {{"new", "y"}}));
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.replica->status().position == 9);
    CHECK(s.get("new") == "y");
    CHECK(s.get("old") == "<none>");  // the abandoned FULL never committed
    CHECK(s.get("q") == "<none>");
    CHECK(s.replica->stats().errors.empty());
    CHECK_FALSE(probe->closed);
}

TEST_CASE("item 10: chunk 0 again in the middle of a FULL restarts it") {
    SlaveSide s;
    auto probe = s.connect();
    deliver(*s.replica, welcome(wire::SyncMode::FULL));
    deliver(*s.replica, chunk(0, false, 5, {{"old", "x"}}));
    deliver(*s.replica, chunk(0, false, 7, {{"b", "2"}}));
    deliver(*s.replica, chunk(1, true, 7, {{"c", "3"}}));
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.get("old") == "<none>");
    CHECK(s.get("c") == "3");
    CHECK_FALSE(probe->closed);
}

TEST_CASE("a FULL the master restarts (watched set changed) runs on the same link, Acks and all") {
    MasterSide m(30, 300);
    SlaveSide s;
    auto sp = s.connect();
    std::shared_ptr<LinkProbe> mp;
    auto session = m.open(mp);
    // The Hello: the first chunks are read now; commits after them make the rest newer, so a
    // replay follows the last chunk. Stop the first FULL in that replay.
    auto hello = sp->take();
    session->onData(Bytes(hello.data(), hello.size()));
    m.commit(3);
    for (int turn = 0; turn < 200 && s.replica->state() != ReplicaState::FullReplay &&
                       s.replica->state() != ReplicaState::Streaming;
         ++turn) {
        auto toMaster = sp->take();
        if (!toMaster.empty()) session->onData(Bytes(toMaster.data(), toMaster.size()));
        auto frames = decodeFrames(mp->take());
        for (auto& f : frames) {
            deliver(*s.replica, f.payload);
            if (s.replica->state() == ReplicaState::FullReplay) break;
        }
    }
    REQUIRE(s.replica->state() == ReplicaState::FullReplay);
    REQUIRE_OK(m.store->setWatchedTables({"t", "u"}));
    m.commit(2);
    session->pump();
    pumpBetween(*mp, *s.replica, *sp, *session);
    CHECK_FALSE(session->closed());
    CHECK_FALSE(sp->closed);
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.replica->status().position == m.head());
    CHECK(m.host.snapshotsMade == 2);
    CHECK(s.get("k31") != "<none>");
}
