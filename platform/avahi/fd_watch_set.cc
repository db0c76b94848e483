#include "avahi/fd_watch_set.h"

#include <algorithm>

namespace possync::avahi {

namespace {
constexpr unsigned kWantable = FdWatchSet::kIn | FdWatchSet::kOut;
}

FdWatchSet::WatchId FdWatchSet::add(int fd, unsigned events) {
    WatchId id = next_++;
    watches_.emplace(id, Entry{fd, events});
    byFd_[fd].push_back(id);
    return id;
}

bool FdWatchSet::update(WatchId id, unsigned events) {
    auto it = watches_.find(id);
    if (it == watches_.end()) return false;
    it->second.events = events;
    return true;
}

std::optional<int> FdWatchSet::remove(WatchId id) {
    auto it = watches_.find(id);
    if (it == watches_.end()) return std::nullopt;
    int fd = it->second.fd;
    watches_.erase(it);
    auto fit = byFd_.find(fd);
    if (fit != byFd_.end()) {
        auto& ids = fit->second;
        ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
        if (ids.empty()) byFd_.erase(fit);
    }
    return fd;
}

int FdWatchSet::fdOf(WatchId id) const {
    auto it = watches_.find(id);
    return it == watches_.end() ? -1 : it->second.fd;
}

unsigned FdWatchSet::eventsOf(WatchId id) const {
    auto it = watches_.find(id);
    return it == watches_.end() ? 0 : it->second.events;
}

unsigned FdWatchSet::mask(int fd) const {
    auto fit = byFd_.find(fd);
    if (fit == byFd_.end()) return 0;
    unsigned m = 0;
    for (WatchId id : fit->second) m |= watches_.at(id).events & kWantable;
    return m;
}

size_t FdWatchSet::watchCount(int fd) const {
    auto fit = byFd_.find(fd);
    return fit == byFd_.end() ? 0 : fit->second.size();
}

unsigned FdWatchSet::deliverable(WatchId id, unsigned happened) const {
    auto it = watches_.find(id);
    if (it == watches_.end()) return 0;
    unsigned wanted = it->second.events & kWantable;
    // A disabled watch (libdbus toggles watches off by setting 0) hears nothing, not even
    // ERR/HUP: libdbus would otherwise act on a watch it switched off.
    if (wanted == 0) return 0;
    return happened & (wanted | kErr | kHup);
}

std::vector<FdWatchSet::Delivery> FdWatchSet::deliveries(int fd, unsigned happened) const {
    std::vector<Delivery> out;
    auto fit = byFd_.find(fd);
    if (fit == byFd_.end()) return out;
    for (WatchId id : fit->second) {
        unsigned ev = deliverable(id, happened);
        if (ev != 0) out.push_back(Delivery{id, ev});
    }
    return out;
}

}  // namespace possync::avahi
