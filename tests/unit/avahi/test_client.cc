// Unit tests: Client / Publisher / Browser without any avahi-daemon or D-Bus bus, and the
// validation of what gets published.
#include <doctest/doctest.h>
#include <uv.h>

#include <cstdlib>

#include "avahi/browser.h"
#include "avahi/client.h"
#include "avahi/publisher.h"

using namespace possync;
using namespace possync::avahi;

namespace {
ServiceSpec goodSpec() {
    return ServiceSpec{
        "possync-42-devA", "_possync._tcp", 7700, {{"store", "42"}, {"dev", "devA"}, {"proto", "1"}}};
}

int closeLoop(uv_loop_t* loop) {
    for (int i = 0; i < 10 && uv_loop_alive(loop); ++i) uv_run(loop, UV_RUN_NOWAIT);
    return uv_loop_close(loop);
}
}  // namespace

TEST_CASE("service spec validation gives one-line reasons") {
    CHECK(validateServiceSpec(goodSpec()).ok());

    ServiceSpec s = goodSpec();
    s.name = "";
    CHECK(validateServiceSpec(s).error().code == Errc::InvalidArgument);
    s.name = std::string(64, 'n');
    CHECK_FALSE(validateServiceSpec(s).ok());
    s.name = std::string(63, 'n');
    CHECK(validateServiceSpec(s).ok());

    s = goodSpec();
    s.type = "possync";
    auto r = validateServiceSpec(s);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("possync") != std::string::npos);
    CHECK(r.error().message.find('\n') == std::string::npos);

    s = goodSpec();
    s.port = 0;
    CHECK_FALSE(validateServiceSpec(s).ok());

    s = goodSpec();
    s.txt.push_back({"a=b", "c"});
    CHECK_FALSE(validateServiceSpec(s).ok());
    s.txt.back() = {"", "c"};
    CHECK_FALSE(validateServiceSpec(s).ok());
    s.txt.back() = {"big", std::string(252, 'v')};  // 3 + 1 + 252 = 256 bytes
    CHECK(validateServiceSpec(s).error().code == Errc::TooLarge);
    s.txt.back() = {"big", std::string(251, 'v')};
    CHECK(validateServiceSpec(s).ok());
}

TEST_CASE("client without any bus: created, waits in connecting, publishers wait, all close cleanly") {
    // Point libdbus at a bus that does not exist (never the machine's real one).
    setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/possync-test/bus", 1);
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    {
        auto client = Client::create(&loop);
        REQUIRE(client.ok());
        Client& c = **client;
        CHECK(c.state() == ClientState::Connecting);
        CHECK_FALSE(c.connected());
        CHECK(c.raw() == nullptr);
        CHECK(c.hostName().empty());

        auto pub = Publisher::create(c, goodSpec());
        REQUIRE(pub.ok());
        CHECK((*pub)->state() == PublisherState::Waiting);
        CHECK((*pub)->name() == "possync-42-devA");
        CHECK_FALSE((*pub)->update(0, {}).ok());  // invalid: nothing changes
        CHECK((*pub)->spec().port == 7700);
        CHECK((*pub)->update(7800, {{"store", "42"}}).ok());
        CHECK((*pub)->spec().port == 7800);
        CHECK((*pub)->state() == PublisherState::Waiting);

        ServiceSpec bad = goodSpec();
        bad.type = "nope";
        CHECK_FALSE(Publisher::create(c, bad).ok());

        CHECK_FALSE(Browser::create(c, "not a type", {}).ok());
        auto browser = Browser::create(c, "_possync._tcp", {});
        REQUIRE(browser.ok());
        CHECK_FALSE((*browser)->browsing());
        CHECK((*browser)->services().empty());

        // A few loop turns: reconnect attempts keep failing quietly, nothing crashes.
        uv_timer_t guard;
        uv_timer_init(&loop, &guard);
        uv_timer_start(
            &guard, [](uv_timer_t*) {}, 20, 20);
        for (int i = 0; i < 40; ++i) uv_run(&loop, UV_RUN_ONCE);  // ~0.8 s: one retry at 0.5 s
        uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
        uv_run(&loop, UV_RUN_NOWAIT);  // finish the close while `guard` is in scope
        CHECK(c.state() == ClientState::Connecting);
        CHECK(c.generation() >= 2);
        CHECK_FALSE(c.lastError().empty());
        CHECK((*pub)->state() == PublisherState::Waiting);
    }
    CHECK(closeLoop(&loop) == 0);
    unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}

TEST_CASE("client state names are stable words for the console") {
    CHECK(std::string(clientStateName(ClientState::Running)) == "running");
    CHECK(std::string(clientStateName(ClientState::Connecting)) == "connecting");
    CHECK(std::string(publisherStateName(PublisherState::Established)) == "established");
}
