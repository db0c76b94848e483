// FdWatchSet: bookkeeping that merges several Avahi watches on one fd into one poll mask.
//
// libdbus (under avahi-client) opens a read watch and a separate write watch on the same
// socket, while libuv allows only one uv_poll_t per fd. UvPoll therefore keeps one uv_poll_t
// per fd, polled for the union of the events its watches want, and hands each watch only
// its own events. This class is that bookkeeping, free of I/O so it is unit-tested alone.
//
// Events are poll(2) bits (POLLIN, POLLOUT, POLLERR, POLLHUP), which is also what
// AvahiWatchEvent uses. Watch ids are never reused, so a stale id is simply unknown.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

namespace possync::avahi {

class FdWatchSet final {
public:
    using WatchId = uint64_t;

    static constexpr unsigned kIn = POLLIN;
    static constexpr unsigned kOut = POLLOUT;
    static constexpr unsigned kErr = POLLERR;
    static constexpr unsigned kHup = POLLHUP;

    struct Delivery {
        WatchId id;
        unsigned events;  // what this watch is told happened
    };

    // Adds a watch on `fd` wanting `events` (may be 0: a disabled watch). Returns its id.
    WatchId add(int fd, unsigned events);
    // Changes what a watch wants. Returns false (and changes nothing) for an unknown id.
    bool update(WatchId id, unsigned events);
    // Removes a watch; returns its fd, or nullopt for an unknown id. The fd stays known
    // while it has other watches.
    std::optional<int> remove(WatchId id);

    bool contains(WatchId id) const { return watches_.count(id) != 0; }
    // fd / wanted events of a known watch (-1 / 0 for an unknown id).
    int fdOf(WatchId id) const;
    unsigned eventsOf(WatchId id) const;

    bool hasFd(int fd) const { return byFd_.count(fd) != 0; }
    // Union of kIn|kOut wanted by the fd's watches: what the fd's uv_poll_t must poll.
    unsigned mask(int fd) const;
    size_t watchCount() const { return watches_.size(); }
    size_t watchCount(int fd) const;
    size_t fdCount() const { return byFd_.size(); }

    // What watch `id` must be told when `happened` occurred on its fd: the events it wants
    // plus ERR/HUP (poll(2) always reports those). 0 for a disabled or unknown watch.
    unsigned deliverable(WatchId id, unsigned happened) const;
    // For every watch of `fd` (in creation order) with something to be told: id + events.
    // The dispatcher must re-check each id with deliverable() before calling it, because
    // an earlier callback may have removed or changed it.
    std::vector<Delivery> deliveries(int fd, unsigned happened) const;

private:
    struct Entry {
        int fd;
        unsigned events;
    };
    std::map<WatchId, Entry> watches_;
    std::map<int, std::vector<WatchId>> byFd_;  // ids in creation order
    WatchId next_ = 1;
};

}  // namespace possync::avahi
