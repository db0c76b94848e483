// Per-process figures read from /proc: peak and anonymous RSS, CPU time and run-queue wait.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace possync::bench {

// Resident memory of a live process from /proc/PID/status, in KiB (0 when unreadable).
struct Rss {
    uint64_t hwmKb = 0;   // VmHWM: peak resident set since the process started
    uint64_t anonKb = 0;  // RssAnon: heap and stacks (not LMDB's file-backed map)
};
Rss readRss(pid_t pid);

// Scheduler accounting of a live process (/proc/PID/schedstat, main thread), in seconds; -1 when
// unreadable. Wall time = cpu + wait + time blocked (disk, network, idle).
struct Sched {
    double cpuS = -1;   // time on a CPU
    double waitS = -1;  // time runnable but waiting for a CPU (other processes had it)
};
Sched readSched(pid_t pid);

// CPU time of all threads of a live process (/proc/PID/task/*/schedstat: nanoseconds, unlike
// /proc/PID/stat's clock ticks), in seconds; -1 when unreadable.
double readCpuAllThreads(pid_t pid);

}  // namespace possync::bench
