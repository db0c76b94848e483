// Log trimming by count and bytes, never below a pin unless the hard limit is passed.
#include <doctest/doctest.h>

#include "fixture.h"

using namespace possync;
using namespace possync::test;

namespace {
void writeN(store::Store& s, int n, size_t valueSize = 10) {
    for (int i = 0; i < n; ++i) {
        auto w = s.beginWrite();
        REQUIRE_OK(w->put("t", Bytes("k" + std::to_string(i)), Bytes(std::string(valueSize, 'v'))));
        REQUIRE_OK(w->commit());
    }
}
}  // namespace

TEST_CASE("trim by count keeps the newest entries") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    writeN(*s, 99);  // seqs 2..100
    store::TrimLimits l;
    l.maxEntries = 10;
    auto removed = s->trimLog(l);
    REQUIRE_OK(removed);
    CHECK(*removed == 90);
    auto info = s->logInfo();
    CHECK(info->entries == 10);
    CHECK(info->first == 91);
    CHECK(info->last == 100);
}

TEST_CASE("trim by bytes tracks the log's size") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    writeN(*s, 50, 1000);
    auto before = s->logInfo();
    CHECK(before->bytes > 50 * 1000);
    store::TrimLimits l;
    l.maxBytes = 10 * 1100;
    REQUIRE_OK(s->trimLog(l));
    auto after = s->logInfo();
    CHECK(after->bytes <= l.maxBytes);
    CHECK(after->entries >= 9);
    CHECK(after->entries < 50);
    CHECK(after->last == 51);
}

TEST_CASE("trimming never goes below a pin, until the hard limit") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    writeN(*s, 99);
    int pin = s->pin(40);  // a slave at seq 40 needs 41 onwards
    store::TrimLimits l;
    l.maxEntries = 10;
    REQUIRE_OK(s->trimLog(l));
    CHECK(s->logInfo()->first == 41);
    s->movePin(pin, 60);
    REQUIRE_OK(s->trimLog(l));
    CHECK(s->logInfo()->first == 61);
    // Past the hard limit the pin gives way.
    l.hardMaxEntries = 20;
    s->movePin(pin, 0);
    REQUIRE_OK(s->trimLog(l));
    CHECK(s->logInfo()->entries == 20);
    s->unpin(pin);
    CHECK_FALSE(s->minPin().has_value());
    REQUIRE_OK(s->trimLog(l));
    CHECK(s->logInfo()->entries == 10);
}

// Issue 9 item 2: the daemon decides from a read transaction whether to take the writer lock.
// trimNeeded must say yes exactly when trimLogAt would remove something.
TEST_CASE("trimNeeded answers from a read transaction what trimLogAt would do") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    writeN(*s, 29);  // seqs 2..30, 30 entries with the watch marker
    store::TrimLimits l;
    l.maxEntries = 30;
    CHECK_FALSE(*s->trimNeeded(l, std::nullopt));  // within the limits
    l.maxEntries = 10;
    CHECK(*s->trimNeeded(l, std::nullopt));
    CHECK(*s->trimNeeded(l, 5));        // the oldest entries are below the pin
    CHECK_FALSE(*s->trimNeeded(l, 0));  // a slave at 0 needs everything
    l.hardMaxEntries = 20;
    CHECK(*s->trimNeeded(l, 0));  // ... until the hard limit
    l.hardMaxEntries = 1000000;
    // A read transaction stays open meanwhile: trimNeeded does not need the writer lock.
    auto reader = s->beginRead();
    REQUIRE_OK(reader);
    CHECK(*s->trimNeeded(l, 5));
    reader->end();
    auto removed = s->trimLogAt(l, 5);
    REQUIRE_OK(removed);
    CHECK(*removed == 5);  // seqs 1..5
    CHECK_FALSE(*s->trimNeeded(l, 5));
    removed = s->trimLogAt(l, 5);
    REQUIRE_OK(removed);
    CHECK(*removed == 0);
    removed = s->trimLogAt(l, std::nullopt);
    REQUIRE_OK(removed);
    CHECK(*removed == 15);
    CHECK(s->logInfo()->entries == 10);
    CHECK_FALSE(*s->trimNeeded(l, std::nullopt));
}
