// Work: one function run on libuv's thread pool (uv_queue_work), its completion on the loop.
//
// For calls that may wait on another process, such as taking LMDB's writer lock, which a POS
// application may hold for seconds: the loop queues the work and goes on serving links and
// consoles; `done` runs on the loop after the work returned.
//
// Lifetime rules:
// - Destroying the Work before `done` ran cancels it: work that has not started never runs;
//   work already running cannot be interrupted, finishes on its thread, and `done` is not
//   called. The request frees itself after libuv reports it. So a Work may be destroyed from
//   anywhere on the loop thread, including inside `done`.
// - Loop::close() waits for work still running (libuv counts the request as active), so
//   uv_loop_close() == 0 holds afterwards; `done` is not called once the loop is closing.
// - `work` runs on another thread: it may only touch what it owns or what is safe to use from
//   two threads at once, and everything it uses must outlive the Work's Loop (not only the
//   Work: a running work outlives its Work). It must not log (the log is loop-only).
// - If queue() returns an error, neither function is ever called (the libuv rule).
#pragma once

#include <functional>
#include <memory>

#include "base/result.h"

namespace possync::uv {

class Loop;

class Work final {
public:
    static Result<std::unique_ptr<Work>> queue(Loop& loop, std::function<void()> work,
                                               std::function<void()> done);
    ~Work();
    Work(const Work&) = delete;
    Work& operator=(const Work&) = delete;

    // Whether `done` has not run yet (the work is queued or running).
    bool pending() const { return request_ != nullptr; }

private:
    struct Request;
    Work() = default;

    Request* request_ = nullptr;
};

}  // namespace possync::uv
