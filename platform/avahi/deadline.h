// Avahi deadlines: absolute wall-clock struct timevals turned into relative timer delays.
//
// Avahi (AvahiPoll::timeout_new/timeout_update) gives timeouts as absolute wall-clock
// times, libuv timers take a relative delay in milliseconds. The conversion is pure so it
// can be tested without a loop.
#pragma once

#include <sys/time.h>

#include <cstdint>
#include <optional>

namespace possync::avahi {

// Longest delay handed to libuv at once; UvPoll re-arms for the rest of a later deadline
// when the shorter timer fires, so a callback never runs before its deadline.
inline constexpr uint64_t kMaxDelayMs = 24ull * 3600 * 1000;

// Delay from `now` until `deadline`, in milliseconds:
//   deadline == nullptr             -> std::nullopt (the timeout is disabled)
//   {0,0}, or at/before `now`       -> 0 (run on the next loop turn)
//   otherwise                       -> rounded UP to whole milliseconds, so it never fires
//                                      before the deadline; capped at kMaxDelayMs.
// Fields are read as given (a tv_usec outside [0, 1e6) is carried into seconds).
std::optional<uint64_t> delayMsUntil(const timeval* deadline, const timeval& now);

// The current wall-clock time (gettimeofday), the clock Avahi's deadlines use.
timeval wallClockNow();

}  // namespace possync::avahi
