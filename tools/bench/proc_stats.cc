#include "proc_stats.h"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace possync::bench {

namespace {

uint64_t statusField(const std::string& text, std::string_view key) {
    size_t at = text.find(key);
    if (at == std::string::npos) return 0;
    return std::strtoull(text.c_str() + at + key.size(), nullptr, 10);
}

}  // namespace

Rss readRss(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return Rss{statusField(text, "VmHWM:"), statusField(text, "RssAnon:")};
}

Sched readSched(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/schedstat");
    unsigned long long cpuNs = 0, waitNs = 0;
    Sched s;
    if (in >> cpuNs >> waitNs) {
        s.cpuS = double(cpuNs) / 1e9;
        s.waitS = double(waitNs) / 1e9;
    }
    return s;
}

}  // namespace possync::bench
