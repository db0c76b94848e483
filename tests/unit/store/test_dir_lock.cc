// DirLock: one daemon owns a data directory for its lifetime (issue 9 item 1).
#include <doctest/doctest.h>
#include <unistd.h>

#include <string>

#include "fixture.h"
#include "store/dir_lock.h"

using namespace possync;
using namespace possync::test;

TEST_SUITE("dir-lock") {
    TEST_CASE("one DirLock per data directory; the refusal names the holder's pid") {
        TempDir d;
        auto first = store::DirLock::acquire(d.path());
        REQUIRE_OK(first);
        auto second = store::DirLock::acquire(d.path());
        REQUIRE_FALSE(second.ok());
        CHECK(second.error().code == Errc::Busy);
        CHECK(second.error().message.find("pid " + std::to_string(::getpid())) != std::string::npos);
        first->reset();
        auto third = store::DirLock::acquire(d.path());
        CHECK(third.ok());
    }

    TEST_CASE("DirLock creates a missing data directory") {
        TempDir d;
        auto l = store::DirLock::acquire(d.sub("new"));
        REQUIRE_OK(l);
    }
}
