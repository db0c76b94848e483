// Loop, Timer, Idle, Signal, Poll, FsEvent, and the close rules of handle.h.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <string>

#include "uv/fs_event.h"
#include "uv/idle.h"
#include "uv/poll.h"
#include "uv/signal.h"

#include "fixture.h"

using namespace possync;
using possync::uvtest::LoopFixture;

namespace {

std::string makeTempDir() {
    char tmpl[] = "/tmp/possync-uv-XXXXXX";
    char* dir = mkdtemp(tmpl);
    REQUIRE(dir != nullptr);
    return dir;
}

void removeTree(const std::string& dir) {
    std::string cmd = "rm -rf '" + dir + "'";
    CHECK(std::system(cmd.c_str()) == 0);
}

}  // namespace

TEST_CASE("timer: one-shot fires once, repeating stops from its own callback, stopped never fires") {
    LoopFixture f;
    int once = 0, repeats = 0, stopped = 0;
    auto t1 = uv::Timer::create(*f.loop).value();
    auto t2 = uv::Timer::create(*f.loop).value();
    auto t3 = uv::Timer::create(*f.loop).value();
    t1->start(5, 0, [&] { ++once; });
    t2->start(1, 1, [&] {
        if (++repeats == 5) t2->stop();
    });
    t3->start(10, 0, [&] { ++stopped; });
    t3->stop();
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(once == 1);
    CHECK(repeats == 5);
    CHECK(stopped == 0);
    CHECK_FALSE(t2->active());
    t1.reset();
    t2.reset();
    t3.reset();
    f.finish();
}

TEST_CASE("timer: again() restarts a repeating timeout; restarting from inside the callback is safe") {
    LoopFixture f;
    auto timeout = uv::Timer::create(*f.loop).value();
    auto traffic = uv::Timer::create(*f.loop).value();
    int timeouts = 0, pushes = 0, restarted = 0;
    uint64_t start = f.loop->nowMs(), firedAt = 0;
    timeout->start(60, 60, [&] {
        ++timeouts;
        firedAt = f.loop->nowMs();
        // Replace the running callback with another one: the old one must survive the call.
        timeout->start(1, 0, [&] { ++restarted; });
    });
    traffic->start(20, 20, [&] {
        timeout->again();
        if (++pushes == 5) traffic->stop();
    });
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(timeouts == 1);
    CHECK(restarted == 1);
    // Pushed back five times by 20 ms traffic: the 60 ms timeout fires near 100 + 60 ms.
    CHECK(firedAt - start >= 150);
    timeout.reset();
    traffic.reset();
    f.finish();
}

TEST_CASE("timer: deleting a timer inside its own callback is safe and it never fires again") {
    LoopFixture f;
    int fired = 0;
    auto t = uv::Timer::create(*f.loop).value();
    t->start(1, 1, [&] {
        ++fired;
        t.reset();
    });
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(fired == 1);
    CHECK(t == nullptr);
    f.finish();
}

TEST_CASE("loop close: closes handles still owned; they become inert and free later") {
    LoopFixture f;
    int fired = 0;
    auto t = uv::Timer::create(*f.loop).value();
    t->start(1000, 0, [&] { ++fired; });
    auto idle = uv::Idle::create(*f.loop).value();
    f.finish();
    CHECK(t->closing());
    CHECK(t->loop() == nullptr);
    t->start(1, 0, [&] { ++fired; });  // no effect after close
    CHECK_FALSE(t->active());
    f.loop.reset();
    t.reset();  // loop already gone: must not touch it
    idle.reset();
    CHECK(fired == 0);
}

TEST_CASE("idle: runs once per turn until stopped") {
    LoopFixture f;
    int turns = 0;
    auto idle = uv::Idle::create(*f.loop).value();
    idle->start([&] {
        if (++turns == 10) idle->stop();
    });
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(turns == 10);
    idle.reset();
    f.finish();
}

TEST_CASE("signal: SIGUSR1 raised by the process reaches the callback on the loop") {
    LoopFixture f;
    int got = 0, signum = 0;
    auto sig = uv::Signal::create(*f.loop, SIGUSR1, [&](int s) {
        ++got;
        signum = s;
        f.loop->stop();
    });
    REQUIRE(sig.ok());
    REQUIRE(::kill(::getpid(), SIGUSR1) == 0);
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(got == 1);
    CHECK(signum == SIGUSR1);
    auto bad = uv::Signal::create(*f.loop, 12345, [](int) {});
    CHECK_FALSE(bad.ok());
    if (!bad.ok()) CHECK(bad.error().code == Errc::Io);
    sig.value().reset();
    f.finish();
}

TEST_CASE("poll: a pipe's read end becomes readable after a write") {
    LoopFixture f;
    int fds[2];
    REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
    auto poll = uv::Poll::create(*f.loop, fds[0]);
    REQUIRE(poll.ok());
    int readable = 0;
    char got = 0;
    REQUIRE(poll.value()
                ->start(uv::Poll::Readable,
                        [&](Status st, int events) {
                            if (!st.ok() || !(events & uv::Poll::Readable)) return;
                            ++readable;
                            if (::read(fds[0], &got, 1) == 1) poll.value()->stop();
                        })
                .ok());
    REQUIRE(::write(fds[1], "x", 1) == 1);
    f.run();
    CHECK_FALSE(f.timedOut);
    CHECK(readable == 1);
    CHECK(got == 'x');
    poll.value().reset();
    ::close(fds[0]);
    ::close(fds[1]);
    f.finish();
}

TEST_CASE("fs event: another process touching the notify file wakes the loop within bounded turns") {
    LoopFixture f;
    std::string dir = makeTempDir();
    std::string path = dir + "/possync.notify";
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    REQUIRE(fd >= 0);
    ::close(fd);

    int changes = 0, errors = 0;
    auto watch = uv::FsEvent::create(*f.loop, path, [&](Status st) { st.ok() ? ++changes : ++errors; });
    REQUIRE(watch.ok());
    CHECK(watch.value()->path() == path);

    uint64_t before = uv::Loop::wallMs();
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // The committing process: bump the file's times (what the store does after a commit).
        int rc = ::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
        ::_exit(rc == 0 ? 0 : 1);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);

    int turns = f.runUntil([&] { return changes > 0; }, 50);
    uint64_t latency = uv::Loop::wallMs() - before;
    CHECK_FALSE(f.timedOut);
    CHECK(changes >= 1);
    CHECK(errors == 0);
    CHECK(turns <= 5);
    CHECK(latency < 1000);

    // A second touch, by `touch` this time, is seen too.
    changes = 0;
    std::string cmd = "touch '" + path + "'";
    REQUIRE(std::system(cmd.c_str()) == 0);
    f.runUntil([&] { return changes > 0; }, 50);
    CHECK(changes >= 1);

    auto missing = uv::FsEvent::create(*f.loop, dir + "/absent", [](Status) {});
    CHECK_FALSE(missing.ok());
    if (!missing.ok()) CHECK(missing.error().message.find("absent") != std::string::npos);

    watch.value().reset();
    f.finish();
    removeTree(dir);
}
