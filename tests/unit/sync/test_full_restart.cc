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
