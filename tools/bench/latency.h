// Latency figures of the benchmarks: nearest-rank percentiles and the loopback's round trip.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

#include "child.h"

namespace possync::bench {

// Seconds of a steady-clock duration.
double seconds(Clock::duration d);
// "WHAT: strerror(errno)".
std::string errnoText(const std::string& what);

struct Percentiles {
    double p50 = 0, p99 = 0, max = 0;
};

// Nearest-rank percentiles of durations in seconds, in milliseconds.
Percentiles percentiles(std::vector<double> v);

// Round trips of 64 bytes over a TCP connection on 127.0.0.1 (TCP_NODELAY on both ends), to an
// echo thread of this process: the loopback's RTT, as the daemons' link sees it. In seconds.
Result<std::vector<double>> measureRtt(uint64_t count);

}  // namespace possync::bench
