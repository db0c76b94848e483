// Item 7 (issue 9): the master checks every Ack field against what it sent; a bad Ack is a
// protocol error on that link only.
#include <doctest/doctest.h>

#include "fixture.h"

using namespace possync;
using namespace possync::test;

TEST_CASE("Ack checks (item 7): a FULL chunk never sent is a protocol error on that link") {
    MasterSide m(40, 400);
    uint64_t gen = m.generation();
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(false, 0, 0)));
    auto sentNow = sentMessages(*probe);
    auto c = chunks(sentNow);
    REQUIRE(c.size() == 2);
    // Chunks 0 and 1 were sent; 2 was not. (Old code: ackedChunks_ = 3 > nextChunk_, the window
    // arithmetic wrapped and the FULL stalled with the log pinned.)
    deliver(*s, wire::buildAck(wire::Position(gen, c[0]->snapshot_seq()), true, 2));
    CHECK(s->closed());
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::PROTOCOL);
    CHECK(m.host.statsValue.errors["protocol"] == 1);
    CHECK(m.host.closedCalls == 1);
}

TEST_CASE("Ack checks (item 7): a chunk number that would wrap the window is refused") {
    MasterSide m(40, 400);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(false, 0, 0)));
    auto sentNow = sentMessages(*probe);
    auto c = chunks(sentNow);
    REQUIRE_FALSE(c.empty());
    deliver(*s, wire::buildAck(wire::Position(m.generation(), c[0]->snapshot_seq()), true, 0xFFFFFFFFu));
    CHECK(s->closed());
}

TEST_CASE("Ack checks (item 7): an INCREMENTAL Ack for a seq never sent is refused (off by one)") {
    MasterSide m(10);
    uint64_t gen = m.generation(), head = m.head();
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, gen, head - 7)));
    auto r = ranges(sentMessages(*probe));
    REQUIRE(r.back().second == head - 3);
    SUBCASE("the seq right after the last one sent") {
        deliver(*s, wire::buildAck(wire::Position(gen, head - 2)));
        CHECK(s->closed());
    }
    SUBCASE("the last seq sent is fine") {
        deliver(*s, wire::buildAck(wire::Position(gen, head - 3)));
        CHECK_FALSE(s->closed());
    }
    SUBCASE("another generation") {
        deliver(*s, wire::buildAck(wire::Position(gen + 1, head - 3)));
        CHECK(s->closed());
    }
    SUBCASE("a FULL Ack on a link that never had a FULL") {
        deliver(*s, wire::buildAck(wire::Position(gen, head - 3), true, 0));
        CHECK(s->closed());
    }
    SUBCASE("a FULL Ack for a seq never sent") {
        deliver(*s, wire::buildAck(wire::Position(gen, head + 5), true, 0));
        CHECK(s->closed());
    }
}

TEST_CASE("Ack checks (item 7): a FULL Ack beyond the log sent is refused, a stale chunk Ack is not") {
    MasterSide m(40, 400);
    uint64_t gen = m.generation();
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(false, 0, 0)));
    auto sentNow = sentMessages(*probe);
    auto c = chunks(sentNow);
    uint64_t readSeq = c[0]->snapshot_seq();
    SUBCASE("a seq past the snapshot") {
        deliver(*s, wire::buildAck(wire::Position(gen, readSeq + 1), true, 0));
        CHECK(s->closed());
    }
    SUBCASE("chunk 1 acknowledged twice keeps the link") {
        deliver(*s, wire::buildAck(wire::Position(gen, readSeq), true, 1));
        deliver(*s, wire::buildAck(wire::Position(gen, readSeq), true, 1));
        CHECK_FALSE(s->closed());
    }
}
