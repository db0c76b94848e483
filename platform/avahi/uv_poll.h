// UvPoll: an AvahiPoll (Avahi's main-loop adapter API) running on a libuv loop.
//
// Avahi talks to its main loop through AvahiPoll: fd watches and absolute-time timeouts.
// Here watches become uv_poll_t handles and timeouts uv_timer_t handles on the caller's
// uv_loop_t, so avahi-client runs on the daemon's one loop thread (no avahi-threaded-poll,
// no locks). Two Avahi quirks are handled:
//  - libdbus opens separate read and write watches on one socket, libuv allows one
//    uv_poll_t per fd: watches are merged per fd (FdWatchSet) and each watch is told only
//    its own events; freeing one watch keeps the other working.
//  - timeouts are absolute wall-clock timevals (deadline.h converts them).
//
// Lifetime: UvPoll must outlive every AvahiClient created on api(). Watch and timeout
// memory is released in libuv close callbacks, so the loop must run (as it does at any
// orderly shutdown) after the last watch/timeout is freed; ~UvPoll closes leftovers.
// Every AvahiPoll entry point is safe to call from inside a watch or timeout callback.
#pragma once

#include <uv.h>

#include <cstddef>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include <avahi-common/watch.h>

#include "avahi/fd_watch_set.h"

namespace possync::avahi {

class UvPoll final {
public:
    explicit UvPoll(uv_loop_t* loop);
    ~UvPoll();
    UvPoll(const UvPoll&) = delete;
    UvPoll& operator=(const UvPoll&) = delete;

    // The table to pass to avahi_client_new(). Valid as long as this object.
    const AvahiPoll* api() const { return &api_; }
    uv_loop_t* loop() const { return loop_; }

    // Counters for tests and the console.
    size_t watchCount() const { return set_.watchCount(); }
    size_t fdCount() const { return fds_.size(); }
    size_t timeoutCount() const { return timeouts_.size(); }

private:
    struct Watch;
    struct FdPoll;
    struct Timeout;

    // AvahiPoll entry points (api_.userdata is this).
    static AvahiWatch* watchNew(const AvahiPoll* api, int fd, AvahiWatchEvent event,
                                AvahiWatchCallback callback, void* userdata);
    static void watchUpdate(AvahiWatch* w, AvahiWatchEvent event);
    static AvahiWatchEvent watchGetEvents(AvahiWatch* w);
    static void watchFree(AvahiWatch* w);
    static AvahiTimeout* timeoutNew(const AvahiPoll* api, const struct timeval* tv,
                                    AvahiTimeoutCallback callback, void* userdata);
    static void timeoutUpdate(AvahiTimeout* t, const struct timeval* tv);
    static void timeoutFree(AvahiTimeout* t);

    static void onPoll(uv_poll_t* handle, int status, int events);
    static void onTimer(uv_timer_t* handle);

    // Makes fd's uv_poll_t match the watch set: created, restarted with the union mask,
    // stopped (mask 0) or closed (no watches left). Returns a libuv error code (0 = ok).
    int syncFd(int fd);
    void dispatch(FdPoll* fp, int status, int uvEvents);
    void armTimeout(Timeout* t, const struct timeval* tv);

    uv_loop_t* loop_;
    AvahiPoll api_{};
    FdWatchSet set_;
    std::unordered_map<FdWatchSet::WatchId, std::unique_ptr<Watch>> watches_;
    std::unordered_map<int, FdPoll*> fds_;   // freed in their close callback
    std::unordered_set<Timeout*> timeouts_;  // freed in their close callback
};

}  // namespace possync::avahi
