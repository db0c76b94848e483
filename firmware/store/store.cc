#include "store/store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "log/log.h"

#include "possync_config.h"
#include "wire/change_model.h"

namespace possync::store {

POSSYNC_LOG_CATEGORY(Store)

size_t defaultMapSize() {
    return sizeof(void*) == 4 ? size_t(512) << 20 : size_t(1) << 30;
}

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, const StoreOptions& options) {
    if (dir.empty()) return makeError(Errc::InvalidArgument, "no data directory given (--data DIR)");
    std::unique_ptr<Store> s(new Store(dir, options));
    lmdb::EnvOptions eo;
    // An existing environment keeps the map size stored in it (a daemon's larger --map-size
    // stays in effect for the tool and the C API); only a new one gets the default. An explicit
    // size is applied below, after open, and only when it grows the map.
    struct stat st;
    bool exists = ::stat((dir + "/data.mdb").c_str(), &st) == 0;
    eo.mapSize = exists ? 0 : (options.mapSize ? options.mapSize : defaultMapSize());
    eo.readOnly = options.readOnly;
    eo.create = options.create && !options.readOnly;
    eo.noSync = options.noSync;
    eo.writeMap = options.writeMap;
    auto env = lmdb::Env::open(dir, eo);
    if (!env) return env.takeError();
    s->env_ = std::move(*env);
    if (exists && !options.readOnly && options.mapSize > s->env_->mapSize())
        POSSYNC_TRY(s->env_->setMapSize(options.mapSize));
    s->notifyPath_ = dir + "/possync.notify";
    POSSYNC_TRY(s->init());
    return s;
}

Store::~Store() = default;

Result<bool> Store::openFromRead() {
    auto txn = lmdb::Txn::begin(*env_, false);
    if (!txn) return txn.takeError();
    auto meta = txn->open(kMetaDb, false);
    if (!meta) {
        if (!options_.readOnly && meta.error().code == Errc::NotFound) return false;
        return makeError(Errc::NotFound, dir_ + " is not a possync data directory (no possync.meta)");
    }
    auto m = readMeta(*txn, *meta);
    if (!m) {
        if (!options_.readOnly && m.error().code == Errc::NotFound) return false;
        return m.takeError();
    }
    if (m->format > POSSYNC_FORMAT_VERSION)
        return makeError(Errc::Version, dir_ + " was written by format version " + std::to_string(m->format) +
                                            "; this possync reads up to " +
                                            std::to_string(POSSYNC_FORMAT_VERSION));
    auto log = txn->open(kLogDb, false);
    auto dig = txn->open(kDigestDb, false);
    auto ob = txn->open(kOutboxDb, false);
    auto cl = txn->open(kClientsDb, false);
    auto rs = txn->open(kResultsDb, false);
    auto tr = txn->open(kTrustDb, false);
    if (options_.readOnly) {
        if (!log || !dig) return makeError(Errc::Corrupt, dir_ + ": possync.log or possync.digest missing");
    } else if (!log || !dig || !ob || !cl || !rs || !tr) {
        return false;  // the write path creates what is missing
    }
    metaDbi_ = *meta;
    logDbi_ = *log;
    digestDbi_ = *dig;
    if (ob && cl && rs) {
        requestDbs_ = RequestDbs{*ob, *cl, *rs};
        hasRequestDbs_ = true;
    }
    if (tr) {
        trustDbi_ = *tr;
        hasTrustDb_ = true;
    }
    // Every table's handle now, while no other transaction runs (see lmdb::Env).
    POSSYNC_TRY(txn->openAll());
    POSSYNC_TRY(txn->commit());
    return true;
}

Status Store::init() {
    // An existing, complete directory is opened from a read transaction, without LMDB's writer
    // lock: a slave's FULL sync holds that lock for its whole length, and a POS application
    // opening the directory then must not hang in possync_open; its first write gets
    // Errc::Busy at once instead (beginWrite). Only a new or older directory needs the write path.
    auto opened = openFromRead();
    if (!opened) return opened.takeError();
    if (*opened || options_.readOnly) return createNotifyFile();
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto meta = txn->open(kMetaDb, options_.create);
    if (!meta) {
        return meta.error().code == Errc::NotFound
                   ? makeError(Errc::NotFound, dir_ + " is not a possync data directory (no possync.meta)")
                   : meta.takeError();
    }
    metaDbi_ = *meta;
    auto log = txn->open(kLogDb, true);
    if (!log) return log.takeError();
    logDbi_ = *log;
    auto dig = txn->open(kDigestDb, true);
    if (!dig) return dig.takeError();
    digestDbi_ = *dig;
    for (auto [name, out] :
         {std::pair{kOutboxDb, &requestDbs_.outbox}, std::pair{kClientsDb, &requestDbs_.clients},
          std::pair{kResultsDb, &requestDbs_.results}}) {
        auto d = txn->open(name, true);
        if (!d) return d.takeError();
        *out = *d;
    }
    hasRequestDbs_ = true;
    auto tr = txn->open(kTrustDb, true);
    if (!tr) return tr.takeError();
    trustDbi_ = *tr;
    hasTrustDb_ = true;
    auto m = readMeta(*txn, metaDbi_);
    if (!m && m.error().code != Errc::NotFound) return m.takeError();
    if (!m) {
        Meta fresh;
        fresh.format = POSSYNC_FORMAT_VERSION;
        fresh.generation = randomU64();
        fresh.history = {HistoryRecord{fresh.generation, 0, 0, 0}};
        fresh.device =
            options_.deviceId.empty() ? "board-" + hex64(randomU64()).substr(0, 8) : options_.deviceId;
        POSSYNC_TRY(writeMeta(*txn, metaDbi_, fresh));
        LOG(Store, Info) << "initialised " << dir_ << ": generation " << hex64(fresh.generation)
                         << ", device " << fresh.device;
    } else if (m->format > POSSYNC_FORMAT_VERSION) {
        return makeError(Errc::Version, dir_ + " was written by format version " + std::to_string(m->format) +
                                            "; this possync reads up to " +
                                            std::to_string(POSSYNC_FORMAT_VERSION));
    }
    // Every table's handle now, while no other transaction runs (see lmdb::Env).
    POSSYNC_TRY(txn->openAll());
    POSSYNC_TRY(txn->commit());
    return createNotifyFile();
}

Status Store::createNotifyFile() {
    if (options_.readOnly) return {};
    // 0666 less the umask, as LMDB's files.
    int fd = ::open(notifyPath_.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return makeError(Errc::Io, "cannot create " + notifyPath_ + ": " + strerror(errno));
    ::close(fd);
    return {};
}

Result<Meta> Store::meta() {
    auto txn = lmdb::Txn::begin(*env_, false);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    (void)txn->commit();
    return m;
}

static Error notSyncedRefusal(const std::string& dir) {
    return makeError(Errc::Refused, dir +
                                        " belongs to a slave board that has not synced with its master yet: "
                                        "it does not know which tables are shared; write again once it has");
}

static Error fencedRefusal(const std::string& dir, const std::string& reason) {
    return makeError(Errc::Refused, dir + " is fenced: " + reason +
                                        "; it takes no writes (rejoin makes it a slave of the new master)");
}

Result<WriteTxn> Store::beginWrite() {
    if (options_.readOnly) return makeError(Errc::Refused, dir_ + " is open read-only");
    {
        // The role first, from a read transaction: on a slave, a FULL sync holds LMDB's writer
        // lock for its whole length, so a writer checks the FULL lock and is refused at once
        // rather than waiting for it.
        auto m = meta();
        if (!m) return m.takeError();
        if (!m->fenced.empty()) return fencedRefusal(dir_, m->fenced);
        if (m->role == Role::Slave) {
            if (!m->synced) return notSyncedRefusal(dir_);
            int fd = ::open((dir_ + "/possync.full").c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
            if (fd >= 0) {
                bool busy = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
                ::close(fd);
                if (busy)
                    return makeError(Errc::Busy, dir_ +
                                                     ": this slave is taking a FULL sync from its master; "
                                                     "nothing was queued, write again in a moment");
            }
        }
    }
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    // Again under the writer lock: the role may have changed while this process waited.
    if (m->role == Role::Slave && !m->synced) return notSyncedRefusal(dir_);
    if (!m->fenced.empty()) return fencedRefusal(dir_, m->fenced);
    return WriteTxn(this, std::move(*txn), std::move(*m));
}

Result<ReadTxn> Store::beginRead() {
    auto txn = lmdb::Txn::begin(*env_, false);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    return ReadTxn(this, std::move(*txn), std::move(*m));
}

Result<ApplyTxn> Store::beginApply() {
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    if (m->role != Role::Slave)
        return makeError(Errc::Refused, dir_ + " is a master's directory: it does not apply change models");
    return ApplyTxn(this, std::move(*txn), std::move(*m));
}

Status Store::setWatchedTables(const std::vector<std::string>& tables) {
    for (const auto& t : tables) POSSYNC_TRY(validateTableName(t));
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    if (m->role == Role::Slave)
        return makeError(Errc::Refused, dir_ +
                                            " belongs to a slave board: its watched tables are its master's "
                                            "(set them on the master)");
    Meta next = *m;
    auto sorted = parseTableList(joinTableList(tables));
    if (!sorted) return sorted.takeError();
    next.watched = std::move(*sorted);
    if (next.watched == m->watched) return {};
    uint64_t seq = 0;
    if (m->role == Role::Master) {
        // An entry without changes marks the cut: positions before it need a FULL sync.
        seq = m->seq + 1;
        wire::ChangeModelWriter w(256);
        Bytes frame = w.finishIncremental(m->generation, seq, seq);
        uint8_t key[8];
        putBe64(key, seq);
        POSSYNC_TRY(txn->put(logDbi_, Bytes(key, 8), frame, lmdb::Txn::putAppend));
        next.seq = seq;
        next.resyncSeq = seq;
        next.logBytes += frame.size;
    }
    POSSYNC_TRY(writeMeta(*txn, metaDbi_, next));
    POSSYNC_TRY(txn->commit());
    LOG(Store, Info) << "watched tables: " << (next.watched.empty() ? "(none)" : joinTableList(next.watched));
    committed(seq, seq != 0);
    return {};
}

Status Store::setRole(Role role) {
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    if (m->role == role) return {};
    Meta next = *m;
    next.role = role;
    // Either way the log no longer describes this board's history.
    POSSYNC_TRY(txn->clear(logDbi_));
    next.logBytes = 0;
    next.resyncSeq = 0;
    if (role == Role::Master) {
        // Made master by configuration, not promoted: a new lineage (Store::promote keeps it).
        next.generation = randomU64();
        next.history = {HistoryRecord{next.generation, 0, 0, next.term}};
        next.seq = 0;
        next.synced = false;
    } else {
        next.synced = false;
    }
    POSSYNC_TRY(writeMeta(*txn, metaDbi_, next));
    POSSYNC_TRY(txn->commit());
    LOG(Store, Info) << dir_ << " is now a " << roleName(role) << "'s directory"
                     << (role == Role::Master ? ", new generation " + hex64(next.generation) : "");
    return {};
}

Status Store::setDeviceId(const std::string& device) {
    if (device.empty() || device.size() > 64)
        return makeError(Errc::InvalidArgument, "device id must be 1 to 64 characters");
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    POSSYNC_TRY(txn->put(metaDbi_, Bytes("device"), Bytes(device)));
    return txn->commit();
}

Result<LogInfo> Store::logInfo() {
    auto txn = lmdb::Txn::begin(*env_, false);
    if (!txn) return txn.takeError();
    LogInfo info;
    auto n = txn->entries(logDbi_);
    if (!n) return n.takeError();
    info.entries = *n;
    auto cur = lmdb::Cursor::open(*txn, logDbi_);
    if (!cur) return cur.takeError();
    Bytes k, v;
    auto f = cur->first(k, v);
    if (!f) return f.takeError();
    if (*f && k.size == 8) info.first = getBe64(k.data);
    auto l = cur->last(k, v);
    if (!l) return l.takeError();
    if (*l && k.size == 8) info.last = getBe64(k.data);
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    info.bytes = m->logBytes;
    return info;
}

Status Store::readLog(uint64_t from, size_t maxEntries, size_t maxBytes,
                      const std::function<bool(uint64_t, Bytes)>& fn) {
    auto txn = lmdb::Txn::begin(*env_, false);
    if (!txn) return txn.takeError();
    auto cur = lmdb::Cursor::open(*txn, logDbi_);
    if (!cur) return cur.takeError();
    uint8_t key[8];
    putBe64(key, from);
    Bytes k, v;
    auto r = cur->seek(Bytes(key, 8), k, v);
    size_t n = 0, bytes = 0;
    while (true) {
        if (!r) return r.takeError();
        if (!*r || k.size != 8) break;
        if (n > 0 && (n >= maxEntries || bytes + v.size > maxBytes)) break;
        if (!fn(getBe64(k.data), v)) break;
        ++n;
        bytes += v.size;
        r = cur->next(k, v);
    }
    return {};
}

int Store::pin(uint64_t seq) {
    int id = nextPin_++;
    pins_[id] = seq;
    return id;
}

void Store::movePin(int id, uint64_t seq) {
    auto it = pins_.find(id);
    if (it != pins_.end()) it->second = seq;
}

void Store::unpin(int id) {
    pins_.erase(id);
}

std::optional<uint64_t> Store::minPin() const {
    std::optional<uint64_t> m;
    for (auto& [id, seq] : pins_)
        if (!m || seq < *m) m = seq;
    return m;
}

Result<uint64_t> Store::trimLog(const TrimLimits& limits) {
    auto removed = trimLogAt(limits, minPin());
    if (removed && *removed) LOG(Store, Debug) << "trimmed " << *removed << " log entries";
    return removed;
}

Result<bool> Store::trimNeeded(const TrimLimits& limits, std::optional<uint64_t> pinned) {
    auto txn = lmdb::Txn::begin(*env_, false);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    auto count = txn->entries(logDbi_);
    if (!count) return count.takeError();
    const uint64_t n = *count, bytes = m->logBytes;
    if (n <= limits.maxEntries && bytes <= limits.maxBytes) return false;
    // The first step of trimLogAt's loop: the oldest entry goes unless a pin keeps it.
    auto cur = lmdb::Cursor::open(*txn, logDbi_);
    if (!cur) return cur.takeError();
    Bytes k, v;
    auto r = cur->first(k, v);
    if (!r) return r.takeError();
    if (!*r || k.size != 8) return false;
    const bool withinHard = n <= limits.hardMaxEntries && bytes <= limits.hardMaxBytes;
    return !(pinned && getBe64(k.data) > *pinned && withinHard);
}

Result<uint64_t> Store::trimLogAt(const TrimLimits& limits, std::optional<uint64_t> pinned) {
    auto txn = lmdb::Txn::begin(*env_, true);
    if (!txn) return txn.takeError();
    auto m = readMeta(*txn, metaDbi_);
    if (!m) return m.takeError();
    auto count = txn->entries(logDbi_);
    if (!count) return count.takeError();
    uint64_t n = *count, bytes = m->logBytes, removed = 0;
    if (n <= limits.maxEntries && bytes <= limits.maxBytes) return uint64_t(0);
    {
        auto cur = lmdb::Cursor::open(*txn, logDbi_);
        if (!cur) return cur.takeError();
        Bytes k, v;
        auto r = cur->first(k, v);
        while (n > 0 && (n > limits.maxEntries || bytes > limits.maxBytes)) {
            if (!r) return r.takeError();
            if (!*r) break;
            uint64_t seq = getBe64(k.data);
            bool withinHard = n <= limits.hardMaxEntries && bytes <= limits.hardMaxBytes;
            // A pin at p keeps entries after p (the slave at p needs p+1 onwards).
            if (pinned && seq > *pinned && withinHard) break;
            uint64_t size = v.size;
            POSSYNC_TRY(cur->del());
            --n;
            bytes = bytes > size ? bytes - size : 0;
            ++removed;
            r = cur->first(k, v);
        }
    }
    POSSYNC_TRY(writeMetaU64(*txn, metaDbi_, "log_bytes", bytes));
    POSSYNC_TRY(txn->commit());
    return removed;
}

Result<WatchedDigest> Store::watchedDigest() {
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    WatchedDigest d;
    d.generation = rt->meta().generation;
    d.seq = rt->meta().seq;
    d.synced = rt->meta().synced;
    auto x = rt->watchedDigest();
    if (!x) return x.takeError();
    d.digest = *x;
    return d;
}

Result<std::vector<TrustMember>> Store::trustMembers() {
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    return rt->trustMembers();
}

Result<std::optional<TrustMember>> Store::trustMember(const TrustKey& key) {
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    return rt->trustMember(key);
}

std::optional<lmdb::Dbi> Store::replicatedDbi(std::string_view table) const {
    if (table == kTrustDb) return hasTrustDb_ ? std::optional(trustDbi_) : std::nullopt;
    if (!hasRequestDbs_) return std::nullopt;
    if (table == kClientsDb) return requestDbs_.clients;
    if (table == kResultsDb) return requestDbs_.results;
    return std::nullopt;
}

Result<std::vector<TableInfo>> Store::tables() {
    auto rt = beginRead();
    if (!rt) return rt.takeError();
    auto names = rt->tableNames();
    if (!names) return names.takeError();
    std::vector<TableInfo> out;
    for (auto& n : *names) {
        TableInfo t;
        t.name = n;
        auto e = rt->entries(n);
        if (!e) return e.takeError();
        t.entries = *e;
        auto d = rt->digest(n);
        if (!d) return d.takeError();
        t.digest = *d;
        t.watched = rt->meta().isWatched(n);
        out.push_back(std::move(t));
    }
    // A watched table nobody has written yet still belongs to the listening configuration.
    for (const auto& w : rt->meta().watched) {
        bool present = false;
        for (const auto& t : out) present = present || t.name == w;
        if (!present) out.push_back(TableInfo{w, 0, 0, true});
    }
    std::sort(out.begin(), out.end(), [](const TableInfo& a, const TableInfo& b) { return a.name < b.name; });
    return out;
}

int Store::addCommitListener(std::function<void(uint64_t)> fn) {
    int id = nextListener_++;
    listeners_.emplace(id, std::move(fn));
    return id;
}

void Store::removeCommitListener(int id) {
    listeners_.erase(id);
}

void Store::touchNotify() {
    // Wake daemons in other processes (inotify IN_ATTRIB on the notify file).
    if (::utimensat(AT_FDCWD, notifyPath_.c_str(), nullptr, 0) != 0)
        LOG(Store, Warning) << "cannot touch " << notifyPath_ << ": " << strerror(errno);
}

Result<std::shared_ptr<void>> Store::lockFull() {
    std::string path = dir_ + "/possync.full";
    int fd = ::open(path.c_str(), O_RDONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return makeError(Errc::Io, "cannot open " + path + ": " + strerror(errno));
    // Writers hold their shared lock only for the instant of their check: this waits no longer.
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR) continue;
        int e = errno;
        ::close(fd);
        return makeError(Errc::Io, "cannot lock " + path + ": " + strerror(e));
    }
    return std::shared_ptr<void>(new int(fd), [](void* p) {
        int* f = static_cast<int*>(p);
        ::close(*f);  // releases the flock
        delete f;
    });
}

void Store::committed(uint64_t seq, bool appendedLog) {
    if (appendedLog) touchNotify();
    if (seq == 0) return;
    // Copy the ids first: a listener may remove itself.
    std::vector<int> ids;
    for (auto& [id, fn] : listeners_) ids.push_back(id);
    for (int id : ids) {
        auto it = listeners_.find(id);
        if (it != listeners_.end()) it->second(seq);
    }
}

}  // namespace possync::store
