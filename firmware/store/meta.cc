#include "store/meta.h"

#include <sys/random.h>

#include <algorithm>
#include <chrono>

#include "base/bytes.h"

#include "wire/bounds.h"

namespace possync::store {

const char* roleName(Role role) {
    return role == Role::Master ? "master" : "slave";
}

bool Meta::isWatched(std::string_view table) const {
    for (const auto& t : watched)
        if (t == table) return true;
    return false;
}

static Result<std::optional<Bytes>> getKey(const lmdb::Txn& txn, lmdb::Dbi dbi, std::string_view key) {
    return txn.get(dbi, Bytes(key));
}

static uint64_t asU64(const std::optional<Bytes>& v) {
    return (v && v->size == 8) ? getBe64(v->data) : 0;
}

bool roleFromData(const Meta& meta) {
    return meta.rolePinned || meta.term > 0 || meta.history.size() > 1 || !meta.fenced.empty();
}

Result<Meta> readMeta(const lmdb::Txn& txn, lmdb::Dbi dbi) {
    Meta m;
    auto fmt = getKey(txn, dbi, "format");
    if (!fmt) return fmt.takeError();
    if (!*fmt) return makeError(Errc::NotFound, "data directory not initialised (no format record)");
    m.format = asU64(*fmt);
    struct Field {
        const char* name;
        uint64_t* out;
    };
    for (Field f : {Field{"generation", &m.generation}, Field{"seq", &m.seq},
                    Field{"resync_seq", &m.resyncSeq}, Field{"log_bytes", &m.logBytes},
                    Field{"next_request", &m.nextRequest}, Field{"outbox_count", &m.outboxCount},
                    Field{"outbox_bytes", &m.outboxBytes}, Field{"outbox_max", &m.outboxMaxBytes},
                    Field{"term", &m.term}, Field{"highest_term_seen", &m.highestTermSeen}}) {
        auto v = getKey(txn, dbi, f.name);
        if (!v) return v.takeError();
        *f.out = asU64(*v);
    }
    m.nextRequest = std::max<uint64_t>(m.nextRequest, 1);
    auto rejection = getKey(txn, dbi, "last_rejection");
    if (!rejection) return rejection.takeError();
    if (*rejection) m.lastRejection = (*rejection)->str();
    auto fenced = getKey(txn, dbi, "fenced");
    if (!fenced) return fenced.takeError();
    if (*fenced) m.fenced = (*fenced)->str();
    auto pinned = getKey(txn, dbi, "role_pinned");
    if (!pinned) return pinned.takeError();
    m.rolePinned = asU64(*pinned) != 0;
    auto history = getKey(txn, dbi, "history");
    if (!history) return history.takeError();
    if (*history) {
        auto h = decodeHistory(**history);
        if (!h) return h.takeError();
        m.history = std::move(*h);
    }
    // A directory from before the history (or one whose lineage was cut): its own root.
    if (m.history.empty()) m.history.push_back(HistoryRecord{m.generation, 0, 0, m.term});
    auto synced = getKey(txn, dbi, "synced");
    if (!synced) return synced.takeError();
    m.synced = asU64(*synced) != 0;
    auto dev = getKey(txn, dbi, "device");
    if (!dev) return dev.takeError();
    if (*dev) m.device = (*dev)->str();
    auto role = getKey(txn, dbi, "role");
    if (!role) return role.takeError();
    m.role = (*role && (*role)->view() == "slave") ? Role::Slave : Role::Master;
    auto watched = getKey(txn, dbi, "watched");
    if (!watched) return watched.takeError();
    if (*watched) {
        auto list = parseTableList((*watched)->view());
        if (!list) return makeError(Errc::Corrupt, "possync.meta watched list: " + list.error().message);
        m.watched = std::move(*list);
    }
    return m;
}

Status writeMetaU64(lmdb::Txn& txn, lmdb::Dbi dbi, std::string_view key, uint64_t value) {
    uint8_t be[8];
    putBe64(be, value);
    return txn.put(dbi, Bytes(key), Bytes(be, 8));
}

Status writeMetaHistory(lmdb::Txn& txn, lmdb::Dbi dbi, const std::vector<HistoryRecord>& history) {
    std::string v = encodeHistory(history);
    return txn.put(dbi, Bytes("history"), Bytes(v));
}

Status writeMeta(lmdb::Txn& txn, lmdb::Dbi dbi, const Meta& m) {
    POSSYNC_TRY(writeMetaU64(txn, dbi, "format", m.format));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "generation", m.generation));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "seq", m.seq));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "synced", m.synced ? 1 : 0));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "resync_seq", m.resyncSeq));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "log_bytes", m.logBytes));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "next_request", m.nextRequest));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "outbox_count", m.outboxCount));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "outbox_bytes", m.outboxBytes));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "outbox_max", m.outboxMaxBytes));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "term", m.term));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "highest_term_seen", m.highestTermSeen));
    POSSYNC_TRY(txn.put(dbi, Bytes("fenced"), Bytes(m.fenced)));
    POSSYNC_TRY(writeMetaU64(txn, dbi, "role_pinned", m.rolePinned ? 1 : 0));
    POSSYNC_TRY(writeMetaHistory(txn, dbi, m.history));
    POSSYNC_TRY(txn.put(dbi, Bytes("device"), Bytes(m.device)));
    POSSYNC_TRY(txn.put(dbi, Bytes("role"), Bytes(roleName(m.role))));
    std::string watched = joinTableList(m.watched);
    return txn.put(dbi, Bytes("watched"), Bytes(watched));
}

Status validateTableName(std::string_view name) {
    if (name.empty()) return makeError(Errc::InvalidArgument, "table name is empty");
    // The same bound the wire checks on every table name a peer sends (wire/bounds.h).
    if (name.size() > wire::kMaxTableNameBytes)
        return makeError(Errc::InvalidArgument,
                         "table name is longer than " + std::to_string(wire::kMaxTableNameBytes) + " bytes");
    if (name.find('\0') != std::string_view::npos)
        return makeError(Errc::InvalidArgument, "table name contains a NUL byte");
    if (name.substr(0, kReservedPrefix.size()) == kReservedPrefix)
        return makeError(Errc::InvalidArgument,
                         "table name '" + std::string(name) + "' is reserved (possync.* belongs to possync)");
    return {};
}

Result<std::vector<std::string>> parseTableList(std::string_view list) {
    std::vector<std::string> out;
    size_t pos = 0;
    while (pos <= list.size()) {
        size_t comma = list.find(',', pos);
        if (comma == std::string_view::npos) comma = list.size();
        std::string_view item = list.substr(pos, comma - pos);
        while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
        if (!item.empty()) {
            POSSYNC_TRY(validateTableName(item));
            out.emplace_back(item);
        } else if (comma < list.size()) {
            return makeError(Errc::InvalidArgument, "empty table name in list '" + std::string(list) + "'");
        }
        pos = comma + 1;
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::string joinTableList(const std::vector<std::string>& tables) {
    std::string s;
    for (const auto& t : tables) {
        if (!s.empty()) s += ',';
        s += t;
    }
    return s;
}

uint64_t randomU64() {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v) {
        // getrandom cannot fail for 8 bytes once the pool is initialised; mix the clock as a fallback.
        v = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) *
            0x9e3779b97f4a7c15ull;
    }
    return v;
}

}  // namespace possync::store
