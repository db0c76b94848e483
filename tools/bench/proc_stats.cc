#include "proc_stats.h"

#include <cstdlib>
#include <filesystem>
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

double readCpuAllThreads(pid_t pid) {
    std::error_code ec;
    std::filesystem::directory_iterator tasks("/proc/" + std::to_string(pid) + "/task", ec);
    if (ec) return -1;
    unsigned long long total = 0;
    bool any = false;
    for (const auto& t : tasks) {
        std::ifstream in(t.path() / "schedstat");
        unsigned long long cpuNs = 0;
        if (in >> cpuNs) {  // a thread that ended meanwhile is simply not counted
            total += cpuNs;
            any = true;
        }
    }
    return any ? double(total) / 1e9 : -1;
}

}  // namespace possync::bench
