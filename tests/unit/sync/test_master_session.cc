// MasterSession driven without sockets: scripted slave frames in, decoded frames out, explicit
// time, a real scratch store. Covers the protocol walk, every Ack check, the refusal of a slave
// waiting for its operator, closes and write failures at every step, bogus frames, time jumps.
#include <doctest/doctest.h>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::SessionState;

TEST_CASE("INCREMENTAL: a resuming slave gets the log from its position, windowed by its Acks") {
    MasterSide m(10);
    uint64_t gen = m.generation(), head = m.head();
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, gen, head - 7)));
    CHECK(s->state() == SessionState::Streaming);
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 5);  // Welcome + a window of 4
    CHECK(welcomeOf(msgs[0])->mode() == wire::SyncMode::INCREMENTAL);
    auto r = ranges(msgs);
    REQUIRE(r.size() == 4);
    CHECK(r.front().first == head - 6);
    CHECK(r.back().second == head - 3);
    CHECK(m.host.snapshotsMade == 0);
    // The window is full: nothing more until an Ack.
    s->pump();
    CHECK(sentMessages(*probe).empty());
    deliver(*s, wire::buildAck(wire::Position(gen, head - 3)));
    r = ranges(sentMessages(*probe));
    REQUIRE(r.size() == 3);
    CHECK(r.back().second == head);
    CHECK(s->info().ackedSeq == head - 3);
}

TEST_CASE("a write queue that does not drain stops the pump; it resumes once it drains") {
    MasterSide m(6);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    probe->queued = m.host.cfg.sendBufferBytes;  // the slave stopped reading
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), 1)));
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 1);  // the Welcome only
    probe->queued = 0;
    s->pump();
    CHECK(ranges(sentMessages(*probe)).size() == 4);
}

TEST_CASE("a held session (its board being removed from the trust set) sends nothing until released") {
    MasterSide m(10);
    uint64_t gen = m.generation(), head = m.head();
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    s->hold();
    deliver(*s, wire::buildHello(m.hello(true, gen, head - 7)));
    CHECK(s->state() == SessionState::Streaming);
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 1);  // the Welcome, no log entry
    CHECK(welcomeOf(msgs[0]) != nullptr);
    s->pump();  // a commit wakes it: still nothing
    CHECK(sentMessages(*probe).empty());
    s->release();  // the removal failed: it streams again
    CHECK(ranges(sentMessages(*probe)).size() == 4);
}

TEST_CASE("FULL: chunks within the window, then the log from the snapshot's seq") {
    MasterSide m(40, 400);  // ~16 KB in chunks of 4 KB
    uint64_t gen = m.generation();
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(false, 0, 0)));
    CHECK(s->state() == SessionState::Full);
    CHECK(m.host.snapshotsMade == 1);
    CHECK(m.host.statsValue.fullSyncs == 1);
    auto msgs = sentMessages(*probe);
    CHECK(welcomeOf(msgs[0])->mode() == wire::SyncMode::FULL);
    auto c = chunks(msgs);
    REQUIRE(c.size() == 2);  // the chunk window
    uint64_t readSeq = c[0]->snapshot_seq();
    m.commit(2);  // commits during the FULL are replayed after it
    uint32_t acked = 0;
    for (int guard = 0; guard < 100 && s->state() == SessionState::Full; ++guard) {
        deliver(*s, wire::buildAck(wire::Position(gen, readSeq), true, acked++));
        msgs = sentMessages(*probe);
    }
    REQUIRE(s->state() == SessionState::Streaming);
    // The replay from the snapshot's first seq follows the last chunk.
    for (int guard = 0; guard < 10 && ranges(msgs).empty(); ++guard) {
        deliver(*s, wire::buildAck(wire::Position(gen, readSeq), true, acked - 1));
        msgs = sentMessages(*probe);
    }
    auto r = ranges(msgs);
    REQUIRE_FALSE(r.empty());
    CHECK(r.front().first == readSeq + 1);
}

TEST_CASE("FULL: a chunk the store cannot read yet (Busy) is asked for again at the next pump") {
    MasterSide m(40, 400);
    m.host.busyChunks = 2;
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(false, 0, 0)));
    // The Welcome went out, chunk 0 did not; the link stays open, nothing is reported.
    CHECK(s->state() == SessionState::Full);
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 1);
    CHECK(welcomeOf(msgs[0])->mode() == wire::SyncMode::FULL);
    CHECK(m.host.closedCalls == 0);
    CHECK(m.host.chunkCalls == 1);
    s->pump();  // still Busy
    CHECK(sentMessages(*probe).empty());
    CHECK(s->state() == SessionState::Full);
    s->pump();                    // the transaction ended: the window of chunks goes out, from chunk 0
    msgs = sentMessages(*probe);  // chunks() points into msgs
    auto c = chunks(msgs);
    REQUIRE(c.size() == 2);
    CHECK(c[0]->chunk() == 0);
    CHECK(c[1]->chunk() == 1);
    CHECK(m.host.snapshotsMade == 1);  // the same snapshot, not a new one
    CHECK(m.host.closedCalls == 0);
}

TEST_CASE("refusals: wrong store and wrong protocol version") {
    MasterSide m(1);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    auto h = m.hello(false, 0, 0);
    std::string code;
    SUBCASE("store") {
        h.storeId = "other";
        code = "wrong_store";
    }
    SUBCASE("version") {
        h.protocolVersion = 999;
        code = "version";
    }
    deliver(*s, wire::buildHello(h));
    CHECK(s->closed());
    CHECK(welcomeOf(sentMessages(*probe)[0])->refused());
    CHECK(m.host.statsValue.errors[code] == 1);
    CHECK(m.host.snapshotsMade == 0);
}

TEST_CASE("bogus frames close the link with the matching Error") {
    MasterSide m(3);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    wire::ErrorCode expect = wire::ErrorCode::NONE;
    SUBCASE("not a FlatBuffer") {
        std::vector<uint8_t> junk(32, 0xAB);
        deliver(*s, junk);
        expect = wire::ErrorCode::VERIFY;
    }
    SUBCASE("an oversize length") {
        m.host.cfg.maxFrameBytes = 1024;  // read at construction: a new session
        s = m.open(probe, 2);
        std::vector<uint8_t> big(4096, 1);
        deliver(*s, big);
        expect = wire::ErrorCode::TOO_LARGE;
    }
    SUBCASE("an Ack before the Hello") {
        deliver(*s, wire::buildAck(wire::Position(0, 0)));
        expect = wire::ErrorCode::PROTOCOL;
    }
    SUBCASE("a second Hello") {
        deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
        REQUIRE_FALSE(s->closed());
        deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
        expect = wire::ErrorCode::PROTOCOL;
    }
    SUBCASE("a Welcome from a slave") {
        wire::WelcomeFields w;
        deliver(*s, wire::buildWelcome(w));
        expect = wire::ErrorCode::PROTOCOL;
    }
    CHECK(s->closed());
    CHECK(lastError(sentMessages(*probe)) == expect);
    CHECK(probe->closed);
}

TEST_CASE("time: heartbeats when idle, a timeout when the slave goes silent") {
    MasterSide m(2);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    (void)sentMessages(*probe);
    m.host.time.advance(1000);
    auto msgs = sentMessages(*probe);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].type() == wire::Message::Ping);
    // Heard from the slave: no timeout yet.
    deliver(*s, wire::buildPong(msgs[0].frame()->message_as_Ping()->time_ms(), m.host.time.wallMs(), 0));
    m.host.time.advance(4000);
    CHECK_FALSE(s->closed());
    // One jump past the timeout.
    m.host.time.advance(60000);
    CHECK(s->closed());
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::TIMEOUT);
    CHECK(m.host.statsValue.errors["timeout"] == 1);
    CHECK(m.host.time.activeTimers() == 0);
}

TEST_CASE("a slave that never says Hello times out") {
    MasterSide m(0);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    m.host.time.advance(5000);
    CHECK(s->closed());
}

// One FULL conversation, cut at every step: by the link ending, or by a write failing.
TEST_CASE("close and write failure at every step leave a closed session, one report, no pin") {
    for (int mode = 0; mode < 2; ++mode)
        for (int cut = 0; cut < 40; ++cut) {
            CAPTURE(mode);
            CAPTURE(cut);
            MasterSide m(30, 400);
            uint64_t gen = m.generation();
            std::shared_ptr<LinkProbe> probe;
            auto s = m.open(probe);
            if (mode == 1) probe->refuseSendsAfter = cut;
            std::vector<std::vector<uint8_t>> script;
            script.push_back(wire::buildHello(m.hello(false, 0, 0)));
            int step = 0;
            uint32_t acked = 0;
            uint64_t readSeq = 0;
            for (; step < 60 && !s->closed(); ++step) {
                if (mode == 0 && step == cut) {
                    s->onClosed(step % 2 ? Status(makeError(Errc::Io, "reset by peer")) : Status());
                    break;
                }
                if (step == 0) {
                    deliver(*s, wire::buildHello(m.hello(false, 0, 0)));
                } else {
                    for (auto& msg : sentMessages(*probe))
                        if (msg.type() == wire::Message::ChangeModel) {
                            auto* cm = msg.frame()->message_as_ChangeModel();
                            if (cm->flag() == wire::SyncMode::FULL) {
                                if (cm->chunk() == 0) readSeq = cm->snapshot_seq();
                                acked = cm->chunk();
                            }
                        }
                    deliver(*s, wire::buildAck(wire::Position(gen, readSeq), true, acked));
                }
            }
            if (mode == 0 && cut < 60) REQUIRE(s->closed());
            if (s->closed()) {
                CHECK(m.host.closedCalls == 1);
                CHECK(probe->closed);
                CHECK(m.host.time.activeTimers() == 0);
                size_t calls = probe->sendCalls;
                s->pump();
                m.host.time.advance(10000);
                CHECK(probe->sendCalls == calls);  // a closed session sends nothing more
            }
            s.reset();
            CHECK_FALSE(m.store->minPin().has_value());
        }
}
