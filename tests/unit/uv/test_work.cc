// Work: a function on libuv's thread pool with its completion on the loop; cancelling before
// it starts, dropping the completion while it runs, Loop::close() waiting for it.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "uv/work.h"

#include "fixture.h"

using namespace possync;
using possync::uvtest::LoopFixture;

namespace {

// A gate the pool threads wait at until the test opens it (bounded: 10 s at most).
class Gate final {
public:
    void wait() {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait_for(lock, std::chrono::seconds(10), [this] { return open_; });
    }
    void open() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            open_ = true;
        }
        cv_.notify_all();
    }

private:
    std::mutex mutex_;
    std::condition_variable cv_;
    bool open_ = false;
};

}  // namespace

TEST_CASE("work: runs on another thread, then its completion on the loop thread") {
    LoopFixture f;
    const auto loopThread = std::this_thread::get_id();
    std::atomic<bool> ranElsewhere{false};
    int done = 0;
    bool doneOnLoop = false, workBeforeDone = false;
    std::atomic<int> ran{0};
    auto w = uv::Work::queue(
        *f.loop,
        [&] {
            ranElsewhere = std::this_thread::get_id() != loopThread;
            ++ran;
        },
        [&] {
            ++done;
            doneOnLoop = std::this_thread::get_id() == loopThread;
            workBeforeDone = ran == 1;
        });
    REQUIRE(w.ok());
    CHECK(w.value()->pending());
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(ran == 1);
    CHECK(ranElsewhere);
    CHECK(done == 1);
    CHECK(doneOnLoop);
    CHECK(workBeforeDone);
    CHECK_FALSE(w.value()->pending());
    f.finish();
}

TEST_CASE("work: destroyed before it starts, it never runs; its completion may destroy it") {
    LoopFixture f;
    // Enough blockers to fill any pool size up to 128 threads; the queue is first in, first out,
    // so the Work queued after them cannot start before the gate opens.
    Gate gate;
    std::vector<std::unique_ptr<uv::Work>> blockers;
    std::atomic<int> blockersRan{0};
    int blockersDone = 0;
    for (int i = 0; i < 128; ++i) {
        auto b = uv::Work::queue(
            *f.loop,
            [&] {
                gate.wait();
                ++blockersRan;
            },
            [&] { ++blockersDone; });
        REQUIRE(b.ok());
        blockers.push_back(std::move(b).value());
    }
    std::atomic<int> ran{0};
    int done = 0;
    auto w = uv::Work::queue(
        *f.loop, [&] { ++ran; }, [&] { ++done; });
    REQUIRE(w.ok());
    w.value().reset();  // cancelled: still queued behind the blockers

    // A completion that destroys its own Work.
    std::unique_ptr<uv::Work> self;
    int selfDone = 0;
    auto s = uv::Work::queue(
        *f.loop, [] {},
        [&] {
            ++selfDone;
            self.reset();
        });
    REQUIRE(s.ok());
    self = std::move(s).value();
    gate.open();
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(blockersRan == 128);
    CHECK(blockersDone == 128);
    CHECK(ran == 0);
    CHECK(done == 0);
    CHECK(selfDone == 1);
    CHECK(self == nullptr);
    blockers.clear();
    f.finish();
}

TEST_CASE("work: destroyed while running, it finishes and nobody is called; the loop closes after it") {
    LoopFixture f;
    Gate started, release;
    std::atomic<int> ran{0};
    int done = 0;
    auto w = uv::Work::queue(
        *f.loop,
        [&] {
            started.open();
            release.wait();
            ++ran;
        },
        [&] { ++done; });
    REQUIRE(w.ok());
    started.wait();
    w.value().reset();  // running: it cannot be stopped, its completion is dropped
    release.open();
    f.run();
    CHECK(ran == 1);
    CHECK(done == 0);

    // Loop::close() while a Work that is still owned runs: it waits, calls nobody, and closes.
    Gate started2, release2;
    std::atomic<int> ran2{0};
    auto owned = uv::Work::queue(
        *f.loop,
        [&] {
            started2.open();
            release2.wait();
            ++ran2;
        },
        [&] { ++done; });
    REQUIRE(owned.ok());
    started2.wait();
    release2.open();
    f.finish();  // waits for it; checks uv_loop_close() == 0
    CHECK(ran2 == 1);
    CHECK(done == 0);
    CHECK_FALSE(owned.value()->pending());
    owned.value().reset();
}
