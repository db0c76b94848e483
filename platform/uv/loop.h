// Loop: owns one uv_loop_t; runs it, stops it, and closes it with every handle still on it.
#pragma once

#include <cstdint>
#include <memory>
#include <unordered_set>

#include "base/result.h"

struct uv_loop_s;

namespace possync::uv {

class Handle;

class Loop final {
public:
    // A new loop (uv_loop_init). Errc::Io if libuv cannot make one (no fds left).
    static Result<std::unique_ptr<Loop>> create();
    // Closes the loop if close() was not called; an error is logged, not returned.
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    // uv_run modes. Each returns true when there are still active handles or requests.
    bool run();        // until stop() or nothing is left to do
    bool runOnce();    // one turn; waits for I/O when there is nothing ready
    bool runNoWait();  // one turn; never blocks
    // Makes the running run() return after the current turn.
    void stop();

    // Closes every handle still open (wrappers still owned become inert), runs until all
    // close callbacks ran and checks uv_loop_close() == 0. Must not be called from inside
    // a callback of this loop. Later calls return ok. Errc::Busy when the loop still holds
    // handles or requests afterwards.
    Status close();
    bool closed() const { return closed_; }
    // True from the start of close(): requests still completing (Work, a name being
    // resolved) then free themselves without calling their owners back.
    bool closing() const { return closing_ || closed_; }

    // The raw loop for platform code that drives libuv itself (platform/avahi, serial).
    uv_loop_s* raw() const { return loop_.get(); }

    // Loop time in ms (uv_now): cached at the start of each turn, monotonic.
    uint64_t nowMs() const;
    // Refreshes the cached loop time (uv_update_time) after long synchronous work.
    void updateTime();
    // Wall-clock time, ms since the epoch (timestamps for Ping/Pong and logs).
    static uint64_t wallMs();

private:
    friend class Handle;

    struct LoopFree {
        void operator()(uv_loop_s* loop) const noexcept;
    };

    Loop() = default;
    void add(Handle* handle) { handles_.insert(handle); }
    void remove(Handle* handle) { handles_.erase(handle); }
    bool owns(const Handle* handle) const { return handles_.count(const_cast<Handle*>(handle)) != 0; }

    std::unique_ptr<uv_loop_s, LoopFree> loop_;
    // Every wrapper alive on this loop (to tell them from handles made by raw libuv users).
    std::unordered_set<Handle*> handles_;
    bool closed_ = false;
    bool closing_ = false;
};

}  // namespace possync::uv
