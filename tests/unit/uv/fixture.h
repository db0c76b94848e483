// Test fixture for platform/uv tests: a loop plus a guard timer that bounds every run.
//
// libuv test style: callbacks only count and record; assertions run after the loop
// returns; every test ends with finish(), which closes the loop and checks it closed.
#pragma once

#include <doctest/doctest.h>

#include <memory>

#include "uv/loop.h"
#include "uv/timer.h"

namespace possync::uvtest {

struct LoopFixture {
    std::unique_ptr<uv::Loop> loop;
    uv::Owned<uv::Timer> guard;
    bool timedOut = false;

    // The guard stops the loop after `guardMs` and records the timeout; it does not keep
    // the loop alive by itself (unref), so run() returns as soon as the test's work ends.
    explicit LoopFixture(uint64_t guardMs = 5000) {
        auto l = uv::Loop::create();
        REQUIRE(l.ok());
        loop = std::move(l).value();
        auto t = uv::Timer::create(*loop);
        REQUIRE(t.ok());
        guard = std::move(t).value();
        guard->start(guardMs, 0, [this] {
            timedOut = true;
            loop->stop();
        });
        guard->setRef(false);
    }

    // Runs until stop() or nothing is left, bounded by the guard.
    void run() { loop->run(); }

    // Runs single turns until `done()` or the guard fires; at most maxTurns turns.
    template <typename F>
    int runUntil(F done, int maxTurns = 100000) {
        int turns = 0;
        while (!done() && !timedOut && turns < maxTurns) {
            loop->runOnce();
            ++turns;
        }
        return turns;
    }

    // Runs `turns` non-blocking turns (callbacks that are ready, close callbacks).
    void spin(int turns) {
        for (int i = 0; i < turns; ++i) loop->runNoWait();
    }

    void finish() {
        guard.reset();
        auto st = loop->close();
        CHECK_MESSAGE(st.ok(), (st.ok() ? std::string() : st.error().message));
    }
};

}  // namespace possync::uvtest
