// Item 9 (issue 9): a resuming slave of another generation that may not take it (no
// accept_new_generation) gets a refusal "waiting for the operator" and costs the master no snapshot.
#include <doctest/doctest.h>

#include <regex>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::ReplicaState;
using sync::SessionState;

TEST_CASE("item 9: a resuming slave of another generation that may not take it costs no snapshot") {
    MasterSide m(20, 400);
    uint64_t gen = m.generation();
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, gen ^ 0x5555, 12, /*accept=*/false)));
    CHECK(s->closed());
    CHECK(m.host.snapshotsMade == 0);
    CHECK(m.host.statsValue.fullSyncs == 0);
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 1);
    auto* w = welcomeOf(msgs[0]);
    CHECK(w->refused());
    CHECK(w->code() == wire::ErrorCode::GENERATION);
    CHECK(std::string(wire::textOf(w->reason())).find("waiting for the operator") != std::string::npos);
    CHECK(probe->shutdown);
    CHECK(m.host.statsValue.errors["generation"] == 1);
}

TEST_CASE("item 9: the same slave once its operator accepted gets a FULL sync") {
    MasterSide m(20, 400);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation() ^ 0x5555, 12, /*accept=*/true)));
    CHECK(s->state() == SessionState::Full);
    CHECK(m.host.snapshotsMade == 1);
    CHECK(welcomeOf(sentMessages(*probe)[0])->mode() == wire::SyncMode::FULL);
}

TEST_CASE("item 9: the master's refusal for the operator is shown as waiting for the operator") {
    SlaveSide s;
    // This slave holds generation kGen up to 5.
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    s.replica->onClosed(Status());
    REQUIRE(s.replica->state() == ReplicaState::Backoff);
    probe = s.connect();
    auto hello = sentMessages(*probe);
    REQUIRE(hello.size() == 1);
    CHECK(hello[0].frame()->message_as_Hello()->state() == wire::SlaveState::RESUMING);
    CHECK_FALSE(hello[0].frame()->message_as_Hello()->accept_new_generation());
    deliver(*s.replica, wire::buildRefusal("master-dev", wire::ErrorCode::GENERATION,
                                           "this master has generation 99: waiting for the operator"));
    CHECK(s.replica->state() == ReplicaState::WaitingOperator);
    CHECK(std::regex_search(s.replica->status().waitingReason,
                            std::regex("master data replaced: .*keeping this slave's data until the operator "
                                       "runs accept-generation")));
    CHECK(s.get("a") == "1");
}

TEST_CASE("item 9 end to end: a waiting slave's retries cost the master no snapshot") {
    MasterSide m(10);
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);  // generation kGen: not the master's
    s.replica->onClosed(Status());
    for (int retry = 0; retry < 3; ++retry) {
        auto sp = s.connect();
        std::shared_ptr<LinkProbe> mp;
        auto session = m.open(mp, uint64_t(retry + 1));
        pumpBetween(*mp, *s.replica, *sp, *session);
        CHECK(s.replica->state() == ReplicaState::WaitingOperator);
        CHECK(session->closed());
    }
    CHECK(m.host.snapshotsMade == 0);
    CHECK(s.get("a") == "1");
    // The operator accepts: the next Hello says so and the FULL comes.
    REQUIRE_OK(s.replica->acceptGeneration());
    auto sp = s.connect();
    std::shared_ptr<LinkProbe> mp;
    auto session = m.open(mp, 9);
    pumpBetween(*mp, *s.replica, *sp, *session);
    CHECK(m.host.snapshotsMade == 1);
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.replica->status().generation == m.generation());
    CHECK(s.get("a") == "<none>");
}
