// Unit tests: UvPoll (AvahiPoll on libuv) with a real loop and a socketpair, no daemon.
// Callbacks only count; assertions run between bounded loop turns; every test closes its
// handles and checks uv_loop_close() == 0.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <functional>

#include <avahi-common/watch.h>

#include "avahi/deadline.h"
#include "avahi/uv_poll.h"

using namespace possync::avahi;

namespace {

// Runs the loop until `done()` or `maxTurns` turns, whichever first. A guard timer makes
// each UV_RUN_ONCE return within 20 ms even when nothing happens.
bool runUntil(uv_loop_t* loop, const std::function<bool()>& done, int maxTurns = 200) {
    uv_timer_t guard;
    uv_timer_init(loop, &guard);
    uv_timer_start(
        &guard, [](uv_timer_t*) {}, 20, 20);
    bool ok = done();
    for (int i = 0; i < maxTurns && !ok; ++i) {
        uv_run(loop, UV_RUN_ONCE);
        ok = done();
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&guard), nullptr);
    uv_run(loop, UV_RUN_NOWAIT);
    return ok;
}

struct Seen {
    int calls = 0;
    unsigned events = 0;  // union of everything delivered
    unsigned last = 0;
    unsigned getEvents = 0;  // watch_get_events() inside the callback
    const AvahiPoll* api = nullptr;
    bool freeSelf = false;  // free the watch from inside its own callback
    bool disableSelf = false;
};

void onWatch(AvahiWatch* w, int, AvahiWatchEvent event, void* userdata) {
    Seen* s = static_cast<Seen*>(userdata);
    ++s->calls;
    s->events |= static_cast<unsigned>(event);
    s->last = static_cast<unsigned>(event);
    s->getEvents = static_cast<unsigned>(s->api->watch_get_events(w));
    if (s->freeSelf)
        s->api->watch_free(w);
    else if (s->disableSelf)
        s->api->watch_update(w, static_cast<AvahiWatchEvent>(0));
}

struct Loop {
    uv_loop_t loop;
    Loop() { uv_loop_init(&loop); }
    // Finishes pending closes; the test checks close() == 0 explicitly.
    int close() {
        for (int i = 0; i < 10 && uv_loop_alive(&loop); ++i) uv_run(&loop, UV_RUN_NOWAIT);
        return uv_loop_close(&loop);
    }
};

void drain(int fd) {
    char buf[64];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

}  // namespace

TEST_CASE("uv poll: read and write watches on one fd share one uv_poll_t and get their own events") {
    Loop L;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    {
        UvPoll poll(&L.loop);
        const AvahiPoll* api = poll.api();
        Seen rd, wr;
        rd.api = wr.api = api;
        wr.disableSelf = true;  // like libdbus: write watch on while there is something to send
        AvahiWatch* r = api->watch_new(api, sv[0], AVAHI_WATCH_IN, onWatch, &rd);
        AvahiWatch* w = api->watch_new(api, sv[0], AVAHI_WATCH_OUT, onWatch, &wr);
        REQUIRE(r != nullptr);
        REQUIRE(w != nullptr);
        CHECK(poll.watchCount() == 2);
        CHECK(poll.fdCount() == 1);

        // The socket is writable at once and has nothing to read.
        REQUIRE(runUntil(&L.loop, [&] { return wr.calls >= 1; }));
        CHECK(wr.last == AVAHI_WATCH_OUT);
        CHECK(wr.getEvents == AVAHI_WATCH_OUT);
        CHECK(rd.calls == 0);
        // Disabled from its callback: no further OUT events, and the read watch still works.
        int wrCalls = wr.calls;
        REQUIRE(write(sv[1], "x", 1) == 1);
        REQUIRE(runUntil(&L.loop, [&] { return rd.calls >= 1; }));
        CHECK(rd.events == AVAHI_WATCH_IN);
        CHECK(rd.getEvents == AVAHI_WATCH_IN);
        CHECK(wr.calls == wrCalls);
        CHECK(api->watch_get_events(r) == 0);  // only meaningful inside the callback

        // Re-enable the write watch, then free it: the read watch keeps working alone.
        wr.disableSelf = false;
        wr.freeSelf = true;
        api->watch_update(w, AVAHI_WATCH_OUT);
        REQUIRE(runUntil(&L.loop, [&] { return wr.calls > wrCalls; }));
        CHECK(poll.watchCount() == 1);
        CHECK(poll.fdCount() == 1);
        drain(sv[0]);
        int rdCalls = rd.calls;
        REQUIRE(write(sv[1], "y", 1) == 1);
        REQUIRE(runUntil(&L.loop, [&] { return rd.calls > rdCalls; }));
        CHECK(rd.last == AVAHI_WATCH_IN);
        drain(sv[0]);

        api->watch_free(r);
        CHECK(poll.watchCount() == 0);
        CHECK(poll.fdCount() == 0);
    }
    close(sv[0]);
    close(sv[1]);
    CHECK(L.close() == 0);
}

TEST_CASE("uv poll: hangup reaches both watches of the fd; a watch freed by the other is skipped") {
    Loop L;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    {
        UvPoll poll(&L.loop);
        const AvahiPoll* api = poll.api();
        Seen a, b;
        a.api = b.api = api;
        a.freeSelf = b.freeSelf = true;
        AvahiWatch* wa = api->watch_new(api, sv[0], AVAHI_WATCH_IN, onWatch, &a);
        AvahiWatch* wb = api->watch_new(api, sv[0], AVAHI_WATCH_IN, onWatch, &b);
        REQUIRE(wa != nullptr);
        REQUIRE(wb != nullptr);
        close(sv[1]);  // peer gone: readable (EOF) + hangup
        REQUIRE(runUntil(&L.loop, [&] { return a.calls >= 1 && b.calls >= 1; }));
        CHECK((a.events & AVAHI_WATCH_IN) != 0);
        CHECK(a.calls == 1);  // freed itself: never called again
        CHECK(b.calls == 1);
        CHECK(poll.watchCount() == 0);
        CHECK(poll.fdCount() == 0);

        // A watch freed by another watch's callback during the same dispatch is not called.
        int sv2[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv2) == 0);
        struct Killer {
            const AvahiPoll* api;
            AvahiWatch* victim = nullptr;
            int calls = 0;
        } killer{api};
        Seen victim;
        victim.api = api;
        AvahiWatch* k = api->watch_new(
            api, sv2[0], AVAHI_WATCH_IN,
            [](AvahiWatch* self, int, AvahiWatchEvent, void* ud) {
                auto* kk = static_cast<Killer*>(ud);
                ++kk->calls;
                if (kk->victim) kk->api->watch_free(kk->victim);
                kk->victim = nullptr;
                kk->api->watch_free(self);
            },
            &killer);
        killer.victim = api->watch_new(api, sv2[0], AVAHI_WATCH_IN, onWatch, &victim);
        REQUIRE(k != nullptr);
        REQUIRE(killer.victim != nullptr);
        REQUIRE(write(sv2[1], "z", 1) == 1);
        REQUIRE(runUntil(&L.loop, [&] { return killer.calls >= 1; }));
        runUntil(
            &L.loop, [] { return false; }, 3);  // a few more turns: nothing else may run
        CHECK(killer.calls == 1);
        CHECK(victim.calls == 0);
        CHECK(poll.fdCount() == 0);
        close(sv2[0]);
        close(sv2[1]);
    }
    close(sv[0]);
    CHECK(L.close() == 0);
}

TEST_CASE("uv poll: a new watch can reuse an fd number right after the old one was freed") {
    Loop L;
    {
        UvPoll poll(&L.loop);
        const AvahiPoll* api = poll.api();
        Seen first, second;
        first.api = second.api = api;
        int sv[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
        int fd = sv[0];
        AvahiWatch* w1 = api->watch_new(api, fd, AVAHI_WATCH_IN, onWatch, &first);
        REQUIRE(w1 != nullptr);
        api->watch_free(w1);
        close(sv[0]);
        close(sv[1]);
        int sv2[2];
        REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv2) == 0);
        AvahiWatch* w2 = api->watch_new(api, sv2[0], AVAHI_WATCH_IN, onWatch, &second);
        REQUIRE(w2 != nullptr);
        REQUIRE(write(sv2[1], "q", 1) == 1);
        REQUIRE(runUntil(&L.loop, [&] { return second.calls >= 1; }));
        CHECK(first.calls == 0);
        api->watch_free(w2);
        close(sv2[0]);
        close(sv2[1]);
    }
    CHECK(L.close() == 0);
}

namespace {
struct Fired {
    int calls = 0;
    std::chrono::steady_clock::time_point at;
    const AvahiPoll* api = nullptr;
    timeval rearm{};  // if set: re-arm from inside the callback (once)
    bool freeSelf = false;
};

void onTimeout(AvahiTimeout* t, void* userdata) {
    Fired* f = static_cast<Fired*>(userdata);
    ++f->calls;
    f->at = std::chrono::steady_clock::now();
    if (f->rearm.tv_sec != 0) {
        timeval next = f->rearm;
        f->rearm = timeval{};
        f->api->timeout_update(t, &next);
    } else if (f->freeSelf) {
        f->api->timeout_free(t);
    }
}

timeval inMs(long ms) {
    timeval now = wallClockNow();
    long usec = now.tv_usec + ms * 1000;
    now.tv_sec += usec / 1000000;
    now.tv_usec = usec % 1000000;
    return now;
}
}  // namespace

TEST_CASE("uv poll: timeouts fire now for {0,0}/past, not before a future deadline, never for NULL") {
    Loop L;
    {
        UvPoll poll(&L.loop);
        const AvahiPoll* api = poll.api();
        Fired zero, past, future, never;
        zero.api = past.api = future.api = never.api = api;
        timeval z{};
        timeval p = inMs(-5000);
        auto start = std::chrono::steady_clock::now();
        timeval f = inMs(60);
        AvahiTimeout* tz = api->timeout_new(api, &z, onTimeout, &zero);
        AvahiTimeout* tp = api->timeout_new(api, &p, onTimeout, &past);
        AvahiTimeout* tf = api->timeout_new(api, &f, onTimeout, &future);
        AvahiTimeout* tn = api->timeout_new(api, nullptr, onTimeout, &never);
        REQUIRE(tz);
        REQUIRE(tp);
        REQUIRE(tf);
        REQUIRE(tn);
        CHECK(poll.timeoutCount() == 4);

        REQUIRE(runUntil(
            &L.loop, [&] { return zero.calls && past.calls; }, 3));
        CHECK(future.calls == 0);
        REQUIRE(runUntil(
            &L.loop, [&] { return future.calls >= 1; }, 50));
        CHECK(future.at - start >= std::chrono::milliseconds(59));
        runUntil(
            &L.loop, [] { return false; }, 3);
        // Fired once each, then disabled (Avahi's contract).
        CHECK(zero.calls == 1);
        CHECK(past.calls == 1);
        CHECK(future.calls == 1);
        CHECK(never.calls == 0);

        // Update to NULL disables a pending timeout.
        timeval soon = inMs(10);
        api->timeout_update(tn, &soon);
        api->timeout_update(tn, nullptr);
        runUntil(
            &L.loop, [] { return false; }, 4);
        CHECK(never.calls == 0);

        for (AvahiTimeout* t : {tz, tp, tf, tn}) api->timeout_free(t);
        CHECK(poll.timeoutCount() == 0);
    }
    CHECK(L.close() == 0);
}

TEST_CASE("uv poll: a timeout re-armed or freed from its own callback") {
    Loop L;
    {
        UvPoll poll(&L.loop);
        const AvahiPoll* api = poll.api();
        Fired again, gone;
        again.api = gone.api = api;
        again.rearm = inMs(20);
        gone.freeSelf = true;
        timeval z{};
        AvahiTimeout* ta = api->timeout_new(api, &z, onTimeout, &again);
        REQUIRE(api->timeout_new(api, &z, onTimeout, &gone) != nullptr);
        REQUIRE(ta);
        REQUIRE(runUntil(
            &L.loop, [&] { return again.calls >= 2; }, 50));
        CHECK(gone.calls == 1);
        CHECK(poll.timeoutCount() == 1);
        api->timeout_free(ta);
    }
    CHECK(L.close() == 0);
}

TEST_CASE("uv poll: leftovers are closed when the UvPoll goes away") {
    Loop L;
    int sv[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
    {
        UvPoll poll(&L.loop);
        const AvahiPoll* api = poll.api();
        Seen s;
        s.api = api;
        timeval later = inMs(100000);
        REQUIRE(api->watch_new(api, sv[0], AVAHI_WATCH_IN, onWatch, &s) != nullptr);
        REQUIRE(api->timeout_new(api, &later, onTimeout, nullptr) != nullptr);
    }
    CHECK(L.close() == 0);
    close(sv[0]);
    close(sv[1]);
}
