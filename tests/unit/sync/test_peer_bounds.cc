// What one broken or hostile peer can cost a session (issue 10, RELIABILITY.md "Per-peer
// bounds"): the outbound queue (control frames included), the deadlines per state (Hello,
// Welcome, a frame once started) and the frames verified before the handshake. Scripted links,
// explicit time: a peer that does not read is a ScriptedLink whose queue never drains.
#include <doctest/doctest.h>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::ReplicaState;
using sync::SessionState;

namespace {

std::vector<uint8_t> ping() {
    return wire::buildPing(1'700'000'000'000, 0);
}

}  // namespace

// ---- outbound queue -------------------------------------------------------------------------

TEST_CASE("master: a slave that sends Pings and never reads the Pongs is dropped at the bound") {
    MasterSide m(2);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    REQUIRE(s->state() == SessionState::Streaming);
    (void)sentMessages(*probe);
    // Within the bound a Pong goes out as usual.
    probe->queued = m.host.cfg.sendBufferBytes;
    deliver(*s, ping());
    CHECK_FALSE(s->closed());
    CHECK(sentMessages(*probe).back().type() == wire::Message::Pong);
    // The queue the slave never drains reached the bound: the next Pong drops the link.
    probe->queued = s->outboundLimit() + 1;
    deliver(*s, ping());
    CHECK(s->closed());
    CHECK(probe->closed);
    CHECK(m.host.statsValue.errors["slow_reader"] == 1);
}

TEST_CASE("master: before a Hello the outbound bound is the handshake's 64 KiB") {
    MasterSide m(0);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    CHECK(s->outboundLimit() == wire::kHandshakeMaxFrameBytes);
    probe->queued = wire::kHandshakeMaxFrameBytes + 1;
    deliver(*s, ping());
    CHECK(s->closed());
    CHECK(m.host.statsValue.errors["slow_reader"] == 1);
}

TEST_CASE("master: the bound leaves room for the pump's last frame and control frames") {
    MasterSide m(2);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    CHECK(s->outboundLimit() > m.host.cfg.sendBufferBytes + m.host.cfg.maxFrameBytes);
    CHECK(s->outboundLimit() <= m.host.cfg.sendBufferBytes + m.host.cfg.maxFrameBytes + (128u << 10));
}

TEST_CASE("slave: a master that sends Pings and never reads the Pongs is dropped at --send-buffer") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    deliver(*s.replica, ping());
    CHECK(s.replica->state() == ReplicaState::Streaming);
    probe->queued = (8u << 20) + 1;
    deliver(*s.replica, ping());
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(probe->closed);
    CHECK(s.replica->stats().errors["slow_reader"] == 1);
}

// ---- deadlines ------------------------------------------------------------------------------

TEST_CASE("master: Pings alone do not keep a link without a Hello open") {
    MasterSide m(0);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    // Never silent (a Ping every 500 ms, within the pre-Hello frame budget, then the bytes of
    // one more frame at a time), but no Hello: closed at the Hello deadline.
    auto f = frameOf(ping());
    for (int i = 0; i < 3; ++i) {
        s->onData(Bytes(f.data(), f.size()));
        m.host.time.advance(500);
    }
    for (size_t i = 0; i < 30 && i < f.size() && !s->closed(); ++i) {
        s->onData(Bytes(f.data() + i, 1));
        m.host.time.advance(100);
    }
    CHECK(s->closed());
    CHECK(m.host.statsValue.errors["hello_timeout"] == 1);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::TIMEOUT);
    CHECK(m.host.time.nowMs() - 1000 <= m.host.cfg.helloTimeoutMs + m.host.cfg.heartbeatMs);
}

TEST_CASE("master: a frame trickled at 1 byte per 100 ms fails its deadline") {
    MasterSide m(2);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    REQUIRE(s->state() == SessionState::Streaming);
    (void)sentMessages(*probe);
    // A 1000-byte frame: its deadline is --timeout-ms + 1016 / --min-frame-rate.
    std::vector<uint8_t> payload(1000, 0);
    uint8_t header[wire::kFrameHeaderBytes];
    wire::writeFrameHeader(header, 1000, wire::frameChecksum(Bytes(payload.data(), payload.size())));
    std::vector<uint8_t> bytes(header, header + sizeof header);
    bytes.insert(bytes.end(), payload.begin(), payload.end());
    uint64_t start = m.host.time.nowMs();
    size_t i = 0;
    for (; i < bytes.size() && !s->closed(); ++i) {
        s->onData(Bytes(&bytes[i], 1));
        m.host.time.advance(100);
    }
    CHECK(s->closed());
    CHECK(i < bytes.size());
    CHECK(m.host.statsValue.errors["frame_timeout"] == 1);
    CHECK(m.host.statsValue.errors["timeout"] == 0);  // it was never silent
    uint64_t deadline = m.host.cfg.timeoutMs + 1016 * 1000 / m.host.cfg.minFrameRate;
    CHECK(m.host.time.nowMs() - start >= deadline);
    CHECK(m.host.time.nowMs() - start <= deadline + 200);
}

TEST_CASE("master: a frame that arrives at a fair pace is not cut") {
    MasterSide m(2);
    m.host.cfg.minFrameRate = 100;  // 100 bytes/s: a 1016-byte frame gets 5 s + 10.16 s
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    (void)sentMessages(*probe);
    auto p = wire::buildPing(1, 0);
    p.resize(1000, 0);  // FlatBuffers ignore trailing bytes after the root's data
    auto f = frameOf(p);
    for (size_t i = 0; i < f.size(); i += 20) {
        s->onData(Bytes(f.data() + i, std::min<size_t>(20, f.size() - i)));
        m.host.time.advance(100);
    }
    CHECK_FALSE(s->closed());
}

TEST_CASE("slave: a Welcome must arrive within --hello-timeout-ms of the Hello") {
    SlaveSide s;
    auto probe = s.connect();
    // The master answers Pongs to our Pings but never welcomes us.
    s.time.advance(2500);
    CHECK(s.replica->state() == ReplicaState::AwaitWelcome);
    s.time.advance(1000);
    // The link was dropped at the deadline; the backoff (0.5 s +-20%) may already have started
    // the next attempt within this second.
    CHECK(s.replica->state() != ReplicaState::AwaitWelcome);
    CHECK(s.replica->stats().errors["hello_timeout"] == 1);
    CHECK(probe->closed);
}

TEST_CASE("slave: a frame trickled by the master fails its deadline") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    auto f = frameOf(change(6, "b", "1"));
    size_t i = 0;
    for (; i < f.size() && s.replica->state() == ReplicaState::Streaming; ++i) {
        s.replica->onData(Bytes(&f[i], 1));
        s.time.advance(100);  // never silent: a byte every 100 ms
    }
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(s.replica->stats().errors["frame_timeout"] == 1);
    CHECK(s.get("b") == "<none>");
}

// ---- verification before the handshake --------------------------------------------------------

TEST_CASE("master: at most kPreHelloFrames frames are verified before a Hello") {
    MasterSide m(0);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    for (uint32_t i = 0; i < sync::kPreHelloFrames; ++i) deliver(*s, ping());
    CHECK_FALSE(s->closed());
    uint64_t framesIn = m.host.statsValue.framesIn;
    // Many more frames in one read: one more is counted and refused, none is verified after it.
    std::vector<uint8_t> burst;
    for (int i = 0; i < 100; ++i) {
        auto f = frameOf(ping());
        burst.insert(burst.end(), f.begin(), f.end());
    }
    s->onData(Bytes(burst.data(), burst.size()));
    CHECK(s->closed());
    CHECK(m.host.statsValue.framesIn == framesIn + 1);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::PROTOCOL);
}

TEST_CASE("master: a Hello after a Ping or two is still accepted") {
    MasterSide m(2);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, ping());
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    CHECK(s->state() == SessionState::Streaming);
    // After the Hello the budget no longer applies.
    for (int i = 0; i < 50; ++i) deliver(*s, ping());
    CHECK_FALSE(s->closed());
}

TEST_CASE("slave: at most kPreHelloFrames frames are verified before the Welcome") {
    SlaveSide s;
    auto probe = s.connect();
    for (uint32_t i = 0; i < sync::kPreHelloFrames; ++i) deliver(*s.replica, ping());
    CHECK(s.replica->state() == ReplicaState::AwaitWelcome);
    deliver(*s.replica, ping());
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(s.replica->stats().errors["protocol"] == 1);
}

// ---- a FULL larger than announced -------------------------------------------------------------

namespace {

std::vector<uint8_t> announcedChunk(uint32_t number, std::optional<uint64_t> records) {
    wire::ChangeModelWriter w;
    std::string k = "k" + std::to_string(number);
    w.put("t", Bytes(k), Bytes("v"));
    Bytes b = w.finishFull(kGen, 5, number, false,
                           number == 0 ? std::vector<std::string>{"t"} : std::vector<std::string>{}, records);
    return std::vector<uint8_t>(b.data, b.data + b.size);
}

}  // namespace

TEST_CASE("slave: a FULL that goes past twice its announced size + 1024 records is refused") {
    SlaveSide s;
    auto probe = s.connect();
    deliver(*s.replica, welcome(wire::SyncMode::FULL));
    // A broken master: announces 2 records, then sends chunks that never end.
    uint32_t n = 0;
    for (; n < 5000 && s.replica->state() == ReplicaState::ReceivingFull; ++n)
        deliver(*s.replica, announcedChunk(n, n == 0 ? std::optional<uint64_t>(2) : std::nullopt));
    CHECK(s.replica->state() == ReplicaState::Backoff);
    CHECK(n == 2 * 2 + 1024 + 1);  // refused at the first record past the limit
    CHECK(s.replica->stats().errors["oversize"] == 1);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::TOO_LARGE);
    CHECK(s.replica->status().synced == false);
    CHECK(s.get("k0") == "<none>");  // nothing of it was committed
}

TEST_CASE("slave: a FULL without an announced size (an older master) is not limited") {
    SlaveSide s;
    auto probe = s.connect();
    deliver(*s.replica, welcome(wire::SyncMode::FULL));
    for (uint32_t n = 0; n < 1100; ++n) deliver(*s.replica, announcedChunk(n, std::nullopt));
    CHECK(s.replica->state() == ReplicaState::ReceivingFull);
}

TEST_CASE("master: chunk 0 announces the records of the snapshot's tables") {
    MasterSide m(40, 400);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(false, 0, 0)));
    auto msgs = sentMessages(*probe);
    auto c = chunks(msgs);
    REQUIRE_FALSE(c.empty());
    REQUIRE(c[0]->snapshot_records().has_value());
    CHECK(*c[0]->snapshot_records() == 40);
    if (c.size() > 1) CHECK_FALSE(c[1]->snapshot_records().has_value());
}
