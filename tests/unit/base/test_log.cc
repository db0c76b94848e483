#include <doctest/doctest.h>

#include "log/log.h"

namespace {
POSSYNC_LOG_CATEGORY(Test)
}

using namespace possync;

TEST_CASE("log levels filter per category and the ring keeps recent lines") {
    log::setStderr(false);
    log::setRingCapacity(3);
    logCategoryTest().setLevel(log::Level::Warning);
    LOG(Test, Info) << "hidden";
    LOG(Test, Warning) << "shown " << 1;
    auto lines = log::recent(10);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].text == "shown 1");
    CHECK(std::string(lines[0].category) == "Test");
    for (int i = 0; i < 5; ++i) LOG(Test, Error) << "e" << i;
    lines = log::recent(10);
    REQUIRE(lines.size() == 3);
    CHECK(lines.back().text == "e4");
    CHECK(log::findCategory("Test") == &logCategoryTest());
    CHECK(log::parseLevel("debug") == log::Level::Debug);
    CHECK_FALSE(log::parseLevel("loud"));
    int seen = 0;
    int id = log::addSink([&](const log::Line&) { ++seen; });
    LOG(Test, Error) << "x";
    log::removeSink(id);
    LOG(Test, Error) << "y";
    CHECK(seen == 1);
}
