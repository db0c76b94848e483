// The config file's values: each TOML type maps to the option's text form, and a value of the
// wrong type or out of range is refused with a reason, never converted (a float given for an
// integer option was converted with undefined behaviour: tests/fuzz/config found it).
#include <doctest/doctest.h>

#include <string>

#include "daemon/options.h"

using namespace possync;
using namespace possync::daemon;

namespace {

Status load(const std::string& text, Options& o) {
    return loadConfigText(text, "test.toml", o);
}

}  // namespace

TEST_CASE("integers, booleans, strings and lists are taken") {
    Options o;
    REQUIRE(load("window = 32\nsync = false\nstore = \"s1\"\ntables = [\"menu\", \"orders\"]\n", o).ok());
    CHECK(o.window == 32);
    CHECK_FALSE(o.sync);
    CHECK(o.store == "s1");
    Options p;
    REQUIRE(load("sync = true\n", p).ok());
    CHECK(p.sync);
}

TEST_CASE("a float, a huge float or a negative number for an integer option is refused") {
    for (const char* text :
         {"window = 1.5\n", "window = +99e197\n", "window = -3\n", "window = inf\n", "window = nan\n"}) {
        CAPTURE(text);
        Options o;
        uint64_t before = o.window;
        auto r = load(text, o);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("window") != std::string::npos);
        CHECK(o.window == before);
    }
}
