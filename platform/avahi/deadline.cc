#include "avahi/deadline.h"

namespace possync::avahi {

std::optional<uint64_t> delayMsUntil(const timeval* deadline, const timeval& now) {
    if (deadline == nullptr) return std::nullopt;
    if (deadline->tv_sec == 0 && deadline->tv_usec == 0) return 0;
    // Work in microseconds on int64; clamp the seconds first so nothing overflows even for
    // absurd inputs (a deadline centuries away simply becomes kMaxDelayMs).
    constexpr int64_t kClampSec = int64_t{1} << 40;
    int64_t diffSec = 0;
    if (__builtin_sub_overflow(static_cast<int64_t>(deadline->tv_sec), static_cast<int64_t>(now.tv_sec),
                               &diffSec))
        return deadline->tv_sec > now.tv_sec ? kMaxDelayMs : 0;
    if (diffSec > kClampSec) return kMaxDelayMs;
    if (diffSec < -kClampSec) return 0;
    int64_t diffUs =
        diffSec * 1000000 + (static_cast<int64_t>(deadline->tv_usec) - static_cast<int64_t>(now.tv_usec));
    if (diffUs <= 0) return 0;
    uint64_t ms = (static_cast<uint64_t>(diffUs) + 999) / 1000;
    return ms > kMaxDelayMs ? kMaxDelayMs : ms;
}

timeval wallClockNow() {
    timeval tv{};
    gettimeofday(&tv, nullptr);
    return tv;
}

}  // namespace possync::avahi
