// Issue 10, "divergence must not be silent": the master announces its watched-table digest at a
// position (Welcome, Ping); a slave at that position with other data raises an alarm, logs it,
// counts it and takes a FULL sync by itself, at most once per hold time while it persists.
#include <doctest/doctest.h>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::ReplicaState;
using sync::SessionState;

namespace {

uint64_t slaveDigest(SlaveSide& s) {
    auto d = s.store->watchedDigest();
    REQUIRE_OK(d);
    return d->digest;
}

std::vector<uint8_t> pingWithDigest(uint64_t seq, uint64_t digest, uint64_t head = 0) {
    return wire::buildPing(1'700'000'000'000, head ? head : seq, wire::DigestAt{kGen, seq, digest});
}

// The Hello the slave sends on its next link (after its backoff).
const wire::Hello* nextHello(SlaveSide& s, std::shared_ptr<LinkProbe>& probe, std::vector<Sent>& keep) {
    probe = s.connect();
    keep = sentMessages(*probe);
    REQUIRE(keep.size() == 1);
    REQUIRE(keep[0].type() == wire::Message::Hello);
    return keep[0].frame()->message_as_Hello();
}

}  // namespace

TEST_CASE("divergence: the master's Welcome and Pings carry its digest at its head") {
    MasterSide m(7);
    auto ours = m.store->watchedDigest();
    REQUIRE_OK(ours);
    REQUIRE(ours->digest != 0);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    REQUIRE(s->state() == SessionState::Streaming);
    auto msgs = sentMessages(*probe);
    auto d = wire::digestOf(welcomeOf(msgs.at(0)));
    REQUIRE(d);
    CHECK(d->generation == m.generation());
    CHECK(d->seq == m.head());
    CHECK(d->digest == ours->digest);

    m.commit(1);
    auto after = m.store->watchedDigest();
    REQUIRE_OK(after);
    m.host.time.advance(1000);  // a heartbeat with nothing else to send: a Ping
    bool sawPing = false;
    for (const auto& msg : sentMessages(*probe)) {
        if (msg.type() != wire::Message::Ping) continue;
        auto pd = wire::digestOf(msg.frame()->message_as_Ping());
        REQUIRE(pd);
        CHECK(pd->seq == after->seq);
        CHECK(pd->digest == after->digest);
        sawPing = true;
    }
    CHECK(sawPing);
}

TEST_CASE("divergence: equal digests at the slave's position raise nothing") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    deliver(*s.replica, pingWithDigest(5, slaveDigest(s)));
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.replica->status().diverged.empty());
    CHECK(s.replica->stats().errors.count("diverged") == 0);
}

TEST_CASE("divergence: another digest at the slave's position: alarm, error count, FULL sync") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    uint64_t ours = slaveDigest(s);
    // The master's data at seq 5 differs (a change forged on the link, a file changed on disk).
    deliver(*s.replica, pingWithDigest(5, ours ^ 0x77));
    auto st = s.replica->status();
    CHECK(st.diverged.rfind("diverged: ", 0) == 0);
    CHECK(st.diverged.find("FULL sync started") != std::string::npos);
    CHECK(s.replica->stats().errors["diverged"] == 1);
    CHECK(probe->closed);
    CHECK(s.replica->state() == ReplicaState::Backoff);
    // It asks for a FULL sync by itself: the next Hello says STARTING.
    std::vector<Sent> keep;
    CHECK(nextHello(s, probe, keep)->state() == wire::SlaveState::STARTING);
    // The FULL brings the master's data; the next Ping's digest matches: the alarm says healed.
    deliver(*s.replica, welcome(wire::SyncMode::FULL, kGen, 5));
    deliver(*s.replica, chunk(0, true, 5, {{"a", "master"}}));
    REQUIRE(s.replica->state() == ReplicaState::Streaming);
    CHECK_FALSE(s.replica->status().diverged.empty());  // not cleared before a comparison
    deliver(*s.replica, pingWithDigest(5, slaveDigest(s)));
    auto healed = s.replica->status().diverged;
    CHECK(healed.rfind("diverged: ", 0) == 0);
    CHECK(healed.find("; healed: digests equal again at") != std::string::npos);
    CHECK(s.replica->state() == ReplicaState::Streaming);
    // Shown for 10 minutes, then gone (pings keep the link alive meanwhile).
    for (int i = 0; i < 601; ++i) {
        s.time.advance(1000);
        deliver(*s.replica, pingWithDigest(5, slaveDigest(s)));
    }
    CHECK(s.replica->status().diverged.empty());
    CHECK(s.replica->stats().errors["diverged"] == 1);
}

TEST_CASE("divergence: a slave behind the digest's position compares once it reaches it") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    deliver(*s.replica, pingWithDigest(6, 0xdead));  // we are at 5: nothing to compare yet
    CHECK(s.replica->status().diverged.empty());
    CHECK(s.replica->state() == ReplicaState::Streaming);
    deliver(*s.replica, change(6, "b", "2"));
    CHECK(s.replica->stats().errors["diverged"] == 1);
    CHECK(s.replica->state() == ReplicaState::Backoff);
}

TEST_CASE("divergence: a persisting mismatch does not loop FULL syncs") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    deliver(*s.replica, pingWithDigest(5, slaveDigest(s) ^ 1));
    REQUIRE(s.replica->state() == ReplicaState::Backoff);
    std::vector<Sent> keep;
    REQUIRE(nextHello(s, probe, keep)->state() == wire::SlaveState::STARTING);
    deliver(*s.replica, welcome(wire::SyncMode::FULL, kGen, 5));
    deliver(*s.replica, chunk(0, true, 5, {{"a", "1"}}));
    REQUIRE(s.replica->state() == ReplicaState::Streaming);
    (void)sentMessages(*probe);
    // Equal once (the FULL's data), then different again: flapping must not loop FULLs either.
    deliver(*s.replica, pingWithDigest(5, slaveDigest(s)));
    CHECK(s.replica->status().diverged.find("healed") != std::string::npos);
    // Still different after the FULL (the master's digest is wrong, or it diverges again):
    // alarm and count, but no second FULL within the hold time.
    deliver(*s.replica, pingWithDigest(5, slaveDigest(s) ^ 1));
    CHECK(s.replica->stats().errors["diverged"] == 2);
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK_FALSE(probe->closed);
    CHECK(s.replica->status().diverged.find("held back") != std::string::npos);
}

TEST_CASE("divergence: a digest of another generation is never compared") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    deliver(*s.replica, wire::buildPing(1, 5, wire::DigestAt{kGen ^ 1, 5, 0xdead}));
    CHECK(s.replica->status().diverged.empty());
    CHECK(s.replica->state() == ReplicaState::Streaming);
}
