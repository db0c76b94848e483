// Unit tests: Avahi deadline conversion and per-fd watch merging bookkeeping (pure code).
#include <doctest/doctest.h>

#include <limits>

#include "avahi/deadline.h"
#include "avahi/fd_watch_set.h"

using namespace possync::avahi;

namespace {
timeval tv(long sec, long usec) {
    timeval t{};
    t.tv_sec = sec;
    t.tv_usec = usec;
    return t;
}
}  // namespace

TEST_CASE("deadline: NULL disables, {0,0} and past deadlines mean now") {
    timeval now = tv(1000, 500000);
    CHECK_FALSE(delayMsUntil(nullptr, now).has_value());
    timeval zero = tv(0, 0);
    CHECK(delayMsUntil(&zero, now) == 0u);
    timeval past = tv(999, 0);
    CHECK(delayMsUntil(&past, now) == 0u);
    timeval justPast = tv(1000, 499999);
    CHECK(delayMsUntil(&justPast, now) == 0u);
    CHECK(delayMsUntil(&now, now) == 0u);
}

TEST_CASE("deadline: future deadlines round up to whole milliseconds") {
    timeval now = tv(1000, 500000);
    timeval in1us = tv(1000, 500001);
    CHECK(delayMsUntil(&in1us, now) == 1u);
    timeval in1500us = tv(1000, 501500);
    CHECK(delayMsUntil(&in1500us, now) == 2u);
    timeval in2ms = tv(1000, 502000);
    CHECK(delayMsUntil(&in2ms, now) == 2u);
    timeval in10s = tv(1010, 500000);
    CHECK(delayMsUntil(&in10s, now) == 10000u);
    // The usec borrow across a second boundary: 1001.1 - 1000.5 = 600 ms.
    timeval borrow = tv(1001, 100000);
    CHECK(delayMsUntil(&borrow, now) == 600u);
}

TEST_CASE("deadline: far deadlines are capped, absurd ones do not overflow") {
    timeval now = tv(1000, 0);
    timeval week = tv(1000 + 7 * 24 * 3600, 0);
    CHECK(delayMsUntil(&week, now) == kMaxDelayMs);
    // The extremes of the platform's long (32-bit on armhf, 64-bit elsewhere).
    timeval huge = tv(std::numeric_limits<long>::max(), 0);
    CHECK(delayMsUntil(&huge, now) == kMaxDelayMs);
    timeval veryPast = tv(std::numeric_limits<long>::min(), 0);
    CHECK(delayMsUntil(&veryPast, now) == 0u);
}

TEST_CASE("deadline: wallClockNow is the gettimeofday clock") {
    timeval a = wallClockNow();
    timeval b{};
    gettimeofday(&b, nullptr);
    CHECK(b.tv_sec - a.tv_sec <= 1);
    CHECK(a.tv_sec > 1600000000);  // after 2020: a real wall clock, not a monotonic one
}

TEST_CASE("watch set: read and write watches on one fd are merged and told apart") {
    FdWatchSet set;
    auto rd = set.add(7, FdWatchSet::kIn);
    auto wr = set.add(7, FdWatchSet::kOut);
    CHECK(set.fdCount() == 1);
    CHECK(set.watchCount(7) == 2);
    CHECK(set.mask(7) == (FdWatchSet::kIn | FdWatchSet::kOut));

    auto onlyIn = set.deliveries(7, FdWatchSet::kIn);
    REQUIRE(onlyIn.size() == 1);
    CHECK(onlyIn[0].id == rd);
    CHECK(onlyIn[0].events == FdWatchSet::kIn);

    auto onlyOut = set.deliveries(7, FdWatchSet::kOut);
    REQUIRE(onlyOut.size() == 1);
    CHECK(onlyOut[0].id == wr);
    CHECK(onlyOut[0].events == FdWatchSet::kOut);

    auto both = set.deliveries(7, FdWatchSet::kIn | FdWatchSet::kOut);
    REQUIRE(both.size() == 2);
    CHECK(both[0].id == rd);  // creation order
    CHECK(both[0].events == FdWatchSet::kIn);
    CHECK(both[1].id == wr);
    CHECK(both[1].events == FdWatchSet::kOut);

    // ERR/HUP reach every enabled watch, with the watch's own events only.
    auto err = set.deliveries(7, FdWatchSet::kIn | FdWatchSet::kErr | FdWatchSet::kHup);
    REQUIRE(err.size() == 2);
    CHECK(err[0].events == (FdWatchSet::kIn | FdWatchSet::kErr | FdWatchSet::kHup));
    CHECK(err[1].events == (FdWatchSet::kErr | FdWatchSet::kHup));
}

TEST_CASE("watch set: removing one watch keeps the other; the last one releases the fd") {
    FdWatchSet set;
    auto rd = set.add(3, FdWatchSet::kIn);
    auto wr = set.add(3, FdWatchSet::kOut);
    auto other = set.add(9, FdWatchSet::kIn);

    REQUIRE(set.remove(rd) == 3);
    CHECK(set.hasFd(3));
    CHECK(set.mask(3) == FdWatchSet::kOut);
    CHECK(set.deliveries(3, FdWatchSet::kIn).empty());
    auto out = set.deliveries(3, FdWatchSet::kIn | FdWatchSet::kOut);
    REQUIRE(out.size() == 1);
    CHECK(out[0].id == wr);

    CHECK_FALSE(set.remove(rd).has_value());  // twice: unknown
    REQUIRE(set.remove(wr) == 3);
    CHECK_FALSE(set.hasFd(3));
    CHECK(set.mask(3) == 0);
    CHECK(set.deliveries(3, FdWatchSet::kIn).empty());
    CHECK(set.hasFd(9));
    CHECK(set.watchCount() == 1);
    CHECK(set.fdOf(other) == 9);
}

TEST_CASE("watch set: disabled watches and updates") {
    FdWatchSet set;
    auto rd = set.add(4, FdWatchSet::kIn);
    auto wr = set.add(4, 0);  // libdbus creates write watches disabled
    CHECK(set.mask(4) == FdWatchSet::kIn);
    CHECK(set.deliverable(wr, FdWatchSet::kErr | FdWatchSet::kHup) == 0);

    REQUIRE(set.update(wr, FdWatchSet::kOut));
    CHECK(set.mask(4) == (FdWatchSet::kIn | FdWatchSet::kOut));
    CHECK(set.deliverable(wr, FdWatchSet::kOut | FdWatchSet::kIn) == FdWatchSet::kOut);

    REQUIRE(set.update(rd, 0));
    CHECK(set.mask(4) == FdWatchSet::kOut);
    CHECK(set.deliverable(rd, FdWatchSet::kIn) == 0);
    CHECK(set.hasFd(4));  // a disabled watch still holds the fd

    CHECK_FALSE(set.update(12345, FdWatchSet::kIn));
    CHECK(set.eventsOf(12345) == 0);
    CHECK(set.fdOf(12345) == -1);
}

TEST_CASE("watch set: ids are never reused") {
    FdWatchSet set;
    auto a = set.add(5, FdWatchSet::kIn);
    REQUIRE(set.remove(a));
    auto b = set.add(5, FdWatchSet::kIn);
    CHECK(b != a);
    CHECK_FALSE(set.contains(a));
    CHECK(set.contains(b));
}
