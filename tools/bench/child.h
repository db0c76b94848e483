// Child: one process started by the benchmark, its output read line by line with deadlines.
//
// The child's stdout and stderr go to one pipe; every line is kept (with the steady-clock time it
// arrived) and appended to a log file, so a failed run can be read afterwards. The child gets
// SIGKILL when the benchmark dies (PR_SET_PDEATHSIG) and when the Child object is destroyed while
// it still runs: no daemon outlives the benchmark. Every wait takes an absolute deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace possync::bench {

using Clock = std::chrono::steady_clock;

struct Line {
    Clock::time_point at;  // when the benchmark read it
    std::string text;
};

class Child final {
public:
    // Starts argv[0] (a path) with argv; output lines are also appended to logPath.
    static Result<std::unique_ptr<Child>> start(const std::vector<std::string>& argv,
                                                const std::string& logPath);
    ~Child();
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;

    pid_t pid() const { return pid_; }
    Clock::time_point startedAt() const { return startedAt_; }
    bool running() const { return !exited_; }
    const std::vector<Line>& lines() const { return lines_; }
    const std::string& logPath() const { return logPath_; }

    // Reads what the child wrote so far without blocking.
    void drain();
    // Waits for a line containing `needle` (searched from line index `from`) and returns its index.
    // `onIdle` runs at least every 10 ms while waiting. Fails when the child exits first or at the
    // deadline, with a message naming the wait and the child's last line.
    Result<size_t> waitForLine(std::string_view needle, Clock::time_point deadline,
                               const std::function<void()>& onIdle = {}, size_t from = 0);
    // Index of the first line (from `from`) containing `needle`, or -1.
    long findLine(std::string_view needle, size_t from = 0) const;
    // Reads all output until the child closes it and exits; returns its exit status (128+signal
    // when killed). Kills it at the deadline and fails.
    Result<int> waitExit(Clock::time_point deadline);
    // SIGTERM, then waitExit until the deadline (SIGKILL and a failure after it).
    Result<int> stop(Clock::time_point deadline);
    // Every line so far, joined with newlines (for a tool's printed answer).
    std::string output() const;

private:
    Child(pid_t pid, int fd, int logFd, std::string logPath, std::string what);
    // Reads once (waiting up to timeoutMs); false at end of output.
    bool readSome(int timeoutMs);
    void takeLines(Clock::time_point at);
    bool reap(bool block);
    void kill();

    pid_t pid_;
    int fd_;
    int logFd_;
    std::string logPath_;
    std::string what_;  // "possyncd --role slave ...", for messages
    Clock::time_point startedAt_;
    std::string partial_;
    std::vector<Line> lines_;
    bool eof_ = false;
    bool exited_ = false;
    int status_ = 0;
};

// SIGINT/SIGTERM to the benchmark make every wait fail ("interrupted") so cleanup still runs.
void catchInterrupts();
bool interrupted();

// Runs a tool to completion (bounded by the deadline) and returns its output; fails with the
// tool's last line when it exits non-zero.
Result<std::string> runTool(const std::vector<std::string>& argv, const std::string& logPath,
                            Clock::time_point deadline);

// A master possyncd started with --listen ADDR:0: waits for its "Daemon: listening on" line and
// returns the address it bound ("127.0.0.1:PORT").
Result<std::string> listeningAddress(Child& master, Clock::time_point deadline);
// SIGTERM; the daemon must exit 0 within 10 s (its log is named otherwise).
Status stopDaemon(Child& c);

// The daemon and the tool the benchmarks run.
struct Binaries {
    std::string possyncd;
    std::string possync;
};
// Finds them in `binDir`: a directory holding both, or a build directory
// (firmware/daemon/possyncd, tools/possync/possync); empty = the build directory the running
// benchmark was built in (it lives in BUILD/tools/bench/).
Result<Binaries> findBinaries(std::string binDir);

}  // namespace possync::bench
