// `possync outbox`: the console's `outbox` (a slave) or `clients` (a master) from the shell,
// read from the data directory, in the console's words (console/format.h) so a script can
// parse either the same way.
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "console/format.h"

namespace possync::tool {

static uint64_t wallMs() {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count());
}

int cmdOutbox(store::Store& s) {
    auto meta = s.meta();
    if (!meta) {
        fprintf(stderr, "possync: %s\n", meta.error().message.c_str());
        return 1;
    }
    std::string out = std::string("role: ") + store::roleName(meta->role) + "\n";
    if (meta->role == store::Role::Master) {
        auto list = s.clients();
        if (!list) {
            fprintf(stderr, "possync: %s\n", list.error().message.c_str());
            return 1;
        }
        std::vector<console::ClientInfo> rows;
        rows.reserve(list->size());
        for (const auto& c : *list)
            rows.push_back({c.device, c.lastRequest, c.lastSeq, c.applied, c.rejected});
        out += console::formatClients(rows);
    } else {
        auto info = s.outboxInfo();
        if (!info) {
            fprintf(stderr, "possync: %s\n", info.error().message.c_str());
            return 1;
        }
        console::OutboxInfo o;
        o.count = info->count;
        o.bytes = info->bytes;
        o.limit = info->maxBytes;
        if (info->oldestId) o.oldestId = info->oldestId;
        o.oldestAgeMs = info->oldestAgeMs(wallMs());
        o.held = info->held;
        o.nextRequest = info->nextRequest;
        o.lastRejection = info->lastRejection;
        out += console::formatOutbox(o);
    }
    fwrite(out.data(), 1, out.size(), stdout);
    return 0;
}

}  // namespace possync::tool
