// Replica driven without sockets: a scripted master (frames built with the wire builders) or a
// real MasterSession over a scratch store, explicit time, links completed by the test. Covers
// the FULL restarted during its replay, the refusal of a slave waiting for its operator, the
// deferred deletion of a link dropped inside its own callback, closes at every step, bogus /
// duplicate / out-of-order frames and time jumps.
#include <doctest/doctest.h>

#include <regex>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::ReplicaState;

TEST_CASE("a slave syncs FULL then INCREMENTAL from a real master session, no socket") {
    MasterSide m(30, 300);
    SlaveSide s;
    auto sp = s.connect();
    std::shared_ptr<LinkProbe> mp;
    auto session = m.open(mp);
    pumpBetween(*mp, *s.replica, *sp, *session);
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.replica->status().position == m.head());
    CHECK(s.get("k7") == std::string(300, char('a' + 8 % 26)));
    m.commit(3);
    session->pump();
    pumpBetween(*mp, *s.replica, *sp, *session);
    CHECK(s.replica->status().position == m.head());
    CHECK(session->info().ackedSeq == m.head());
    CHECK(s.replica->stats().fullSyncs == 1);
}

TEST_CASE("a link dropped inside its own callback is freed on a later turn (deferred deletion)") {
    SlaveSide s;
    auto probe = s.connect();
    // One read holding a refusal and more frames after it: the link is dropped while the
    // decoder is still walking this read.
    std::vector<uint8_t> bytes =
        frameOf(wire::buildRefusal("master-dev", wire::ErrorCode::WRONG_STORE, "no"));
    for (int i = 0; i < 3; ++i) {
        auto more = frameOf(wire::buildPing(1, 2));
        bytes.insert(bytes.end(), more.begin(), more.end());
    }
    s.replica->onData(Bytes(bytes.data(), bytes.size()));
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(probe->closed);
    CHECK(probe->alive);                      // retired, not freed under the caller
    CHECK(sentMessages(*probe).size() == 1);  // the Hello; no Pong for the frames after the drop
    s.time.advance(0);
    CHECK_FALSE(probe->alive);
}

TEST_CASE("duplicate, out-of-order and bogus change models drop the link and apply nothing") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    deliver(*s.replica, change(6, "b", "1"));
    REQUIRE(s.replica->status().position == 6);
    std::vector<uint8_t> bad;
    SUBCASE("duplicate") {
        bad = change(6, "b", "dup");
    }
    SUBCASE("out of order") {
        bad = change(8, "b", "skip");
    }
    SUBCASE("another generation") {
        wire::ChangeModelWriter w;
        w.put("t", Bytes("b"), Bytes("gen"));
        Bytes b = w.finishIncremental(kGen + 1, 7, 7);
        bad.assign(b.data, b.data + b.size);
    }
    SUBCASE("a FULL chunk out of order") {
        bad = chunk(3, false, 7, {{"b", "chunk"}});
    }
    SUBCASE("a second Welcome") {
        bad = welcome(wire::SyncMode::INCREMENTAL);
    }
    SUBCASE("not a frame") {
        bad.assign(40, 0xEE);
    }
    deliver(*s.replica, bad);
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(probe->closed);
    CHECK(s.replica->status().position == 6);
    CHECK(s.get("b") == "1");
    auto msgs = sentMessages(*probe);
    REQUIRE_FALSE(msgs.empty());
    CHECK(msgs.back().type() == wire::Message::Error);
}

TEST_CASE("frames split at every byte are applied the same") {
    SlaveSide s;
    auto probe = s.connect();
    std::vector<uint8_t> bytes;
    for (auto& p : {welcome(wire::SyncMode::FULL), chunk(0, true, 5, {{"a", "1"}}), change(6, "b", "2")}) {
        auto f = frameOf(p);
        bytes.insert(bytes.end(), f.begin(), f.end());
    }
    for (uint8_t byte : bytes) s.replica->onData(Bytes(&byte, 1));
    CHECK(s.replica->status().position == 6);
    CHECK(s.get("b") == "2");
}

TEST_CASE("time: Pings when idle, a timeout drops the link, the backoff reconnects") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    s.time.advance(1000);
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].type() == wire::Message::Ping);
    s.time.advance(4000);
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(sentMessages(*probe).back().frame()->message_as_Error()->code() == wire::ErrorCode::TIMEOUT);
    CHECK(s.replica->stats().errors["timeout"] == 1);
    size_t attempts = s.connector.attempts.size();
    for (int i = 0; i < 1000 && s.connector.attempts.size() == attempts; ++i) s.time.advance(10);
    CHECK(s.connector.attempts.size() == attempts + 1);
    CHECK(s.replica->state() == ReplicaState::Connecting);
    // A connect that never completes has its own deadline.
    s.time.advance(5000);
    CHECK(s.replica->state() != ReplicaState::Connecting);
    CHECK(s.connector.attempts.back()->cancelled);
}

TEST_CASE("lag_ms does not depend on the master's wall clock (boards without NTP disagree by hours)") {
    const uint64_t hours2 = 2 * 3600 * 1000;
    for (int64_t skew : {int64_t(hours2), -int64_t(hours2), int64_t(0)}) {
        CAPTURE(skew);
        SlaveSide s;
        std::shared_ptr<LinkProbe> probe;
        streamingAt5(s, probe);
        // A round trip of 40 ms: our Ping, the master's Pong (stamped with its skewed clock).
        s.time.advance(1000);
        auto ping = sentMessages(*probe);
        REQUIRE_FALSE(ping.empty());
        uint64_t sentAt = ping.back().frame()->message_as_Ping()->time_ms();
        s.time.advance(40);
        deliver(*s.replica, wire::buildPong(sentAt, uint64_t(int64_t(s.time.wallMs()) + skew), 5));
        CHECK(s.replica->status().rttMs == 40);
        // The master, 7 changes ahead, pings; 300 ms later the slave has applied none of them.
        deliver(*s.replica, wire::buildPing(uint64_t(int64_t(s.time.wallMs()) + skew), 12));
        s.time.advance(300);
        auto st = s.replica->status();
        CHECK(st.lagChanges == 7);
        CHECK(st.lagMs == 320);  // 300 ms since its Ping + half the round trip
        // Caught up: no lag.
        for (uint64_t seq = 6; seq <= 12; ++seq) deliver(*s.replica, change(seq, "k", "v"));
        CHECK(s.replica->status().lagMs == 0);
    }
}

TEST_CASE("a master of a higher term closes the link to the old one; the same or a lower term does not") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    REQUIRE(s.locator.onChange);
    s.locator.device = "other-dev";  // another board, same term: a tie is the locator's business
    s.locator.onChange();
    CHECK(s.replica->state() == ReplicaState::Streaming);
    s.locator.device = "promoted";
    s.locator.port = 7800;
    s.locator.term = 1;
    size_t attempts = s.connector.attempts.size();
    s.locator.onChange();
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(probe->closed);
    CHECK(s.replica->stats().errors.empty());  // not a fault of the link
    for (int i = 0; i < 100 && s.connector.attempts.size() == attempts; ++i) s.time.advance(10);
    REQUIRE(s.connector.attempts.size() == attempts + 1);
    CHECK(s.replica->status().position == 5);  // nothing applied or lost by the switch
}

TEST_CASE("a failed Ack write drops the link; the applied batch stays committed") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    probe->refuseSendsAfter = 0;
    deliver(*s.replica, change(6, "b", "1"));
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(s.replica->status().position == 6);
    CHECK(s.get("b") == "1");
}

TEST_CASE("operator resync from AwaitWelcome and Streaming goes through the table") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    SUBCASE("await-welcome") {
        probe = s.connect();
    }
    SUBCASE("streaming") {
        streamingAt5(s, probe);
    }
    REQUIRE_OK(s.replica->resync());
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(s.replica->stats().errors.count("internal") == 0);
    auto next = s.connect();
    auto hello = sentMessages(*next);
    CHECK(hello[0].frame()->message_as_Hello()->state() == wire::SlaveState::STARTING);
}

// The link cut after every frame of a FULL + INCREMENTAL conversation with a real master: the
// slave always holds the old data set or a complete one, and the next link converges.
TEST_CASE("close at every step: never a partial data set, always converges") {
    int cuts = 0, cutsMidFull = 0;
    for (int cut = 0; cut < 30; ++cut) {
        CAPTURE(cut);
        MasterSide m(20, 600);
        SlaveSide s;
        auto sp = s.connect();
        std::shared_ptr<LinkProbe> mp;
        auto session = m.open(mp);
        int delivered = 0;
        bool cutDone = false;
        for (int turn = 0; turn < 1000 && !cutDone; ++turn) {
            auto toMaster = sp->take();
            if (!toMaster.empty() && mp->events) session->onData(Bytes(toMaster.data(), toMaster.size()));
            auto frames = decodeFrames(mp->take());
            if (frames.empty() && toMaster.empty()) break;
            for (auto& f : frames) {
                if (delivered++ == cut) {
                    s.replica->onClosed(makeError(Errc::Io, "cut"));
                    cutDone = true;
                    break;
                }
                deliver(*s.replica, f.payload);
            }
            if (delivered == 8 && !cutDone) m.commit(2), session->pump();
        }
        auto st = s.replica->status();
        if (cutDone) {
            ++cuts;
            if (!st.synced && cut > 1) ++cutsMidFull;
            CHECK(s.replica->state() == ReplicaState::Backoff);
            // All or nothing: either nothing was committed or a whole FULL (at least chunk 0's seq).
            if (st.synced)
                CHECK(s.get("k0") != "<none>");
            else
                CHECK(s.get("k0") == "<none>");
            session->onClosed(Status());
        }
        auto sp2 = s.connect();
        std::shared_ptr<LinkProbe> mp2;
        auto session2 = m.open(mp2, 2);
        pumpBetween(*mp2, *s.replica, *sp2, *session2);
        CHECK(s.replica->state() == ReplicaState::Streaming);
        CHECK(s.replica->status().position == m.head());
        CHECK(s.get("k19") != "<none>");
    }
    // The conversation is long enough that the cuts land inside the FULL and after it.
    CHECK(cutsMidFull >= 3);
    CHECK(cuts > cutsMidFull);
}
