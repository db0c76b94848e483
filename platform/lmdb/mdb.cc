#include "lmdb/mdb.h"

#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace possync::lmdb {

const unsigned Txn::putAppend = MDB_APPEND;
const unsigned Txn::noOverwrite = MDB_NOOVERWRITE;

static MDB_val toVal(Bytes b) {
    return MDB_val{b.size, const_cast<uint8_t*>(b.data)};
}
static Bytes fromVal(const MDB_val& v) {
    return Bytes(v.mv_data, v.mv_size);
}

Error fromMdb(int rc, std::string_view what) {
    std::string msg = std::string(what) + ": " + mdb_strerror(rc);
    switch (rc) {
        case MDB_MAP_FULL:
            return makeError(Errc::MapFull, std::string(what) +
                                                ": the database map is full; raise map_size "
                                                "(--map-size) and restart");
        case MDB_BAD_VALSIZE: return makeError(Errc::TooLarge, msg);
        case MDB_NOTFOUND: return makeError(Errc::NotFound, msg);
        case MDB_KEYEXIST: return makeError(Errc::Exists, msg);
        case MDB_INVALID: return makeError(Errc::Corrupt, msg);
        case MDB_VERSION_MISMATCH: return makeError(Errc::Version, msg);
        case MDB_CORRUPTED:
        case MDB_PAGE_NOTFOUND: return makeError(Errc::Corrupt, msg);
        case MDB_DBS_FULL:
        case MDB_READERS_FULL:
        case MDB_TXN_FULL: return makeError(Errc::TooLarge, msg);
        case EACCES:
        case EROFS: return makeError(Errc::Refused, msg);
        default: return makeError(Errc::Io, msg);
    }
}

size_t Env::maxMapSize() {
    // On 32-bit boards the map must fit the address space next to the program and its
    // heap; 2 GiB is already optimistic, so refuse more with a clear error.
    return sizeof(void*) == 4 ? size_t(2047) << 20 : size_t(1) << 40;
}

Result<std::unique_ptr<Env>> Env::open(const std::string& dir, const EnvOptions& options) {
    struct stat st;
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno != ENOENT || !options.create)
            return makeError(Errc::NotFound, "data directory " + dir + ": " + strerror(errno));
        // 0777 less the umask, like every file here: the packaged UMask decides who may read.
        if (::mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST)
            return makeError(Errc::Io, "cannot create data directory " + dir + ": " + strerror(errno));
    } else if (!S_ISDIR(st.st_mode)) {
        return makeError(Errc::InvalidArgument, "data directory " + dir + " is not a directory");
    }
    if (!options.create) {
        std::string data = dir + "/data.mdb";
        if (::stat(data.c_str(), &st) != 0)
            return makeError(Errc::NotFound, dir + " is not a possync data directory (no data.mdb)");
    }
    if (options.mapSize > maxMapSize())
        return makeError(Errc::TooLarge, "map size " + std::to_string(options.mapSize >> 20) +
                                             " MiB is larger than this board can map (" +
                                             std::to_string(maxMapSize() >> 20) + " MiB)");
    MDB_env* env = nullptr;
    int rc = mdb_env_create(&env);
    if (rc) return fromMdb(rc, "create LMDB environment");
    mdb_env_set_maxdbs(env, options.maxDbs);
    mdb_env_set_maxreaders(env, 126);
    if (options.mapSize) mdb_env_set_mapsize(env, options.mapSize);
    unsigned flags = MDB_NOTLS;  // a thread may hold a read txn while the write txn is open
    if (options.readOnly) flags |= MDB_RDONLY;
    if (options.noSync) flags |= MDB_NOSYNC;
    if (options.writeMap && !options.readOnly) flags |= MDB_WRITEMAP;
    // 0666 less the process umask (the packaged UMask=0007 gives the possync group read-write).
    rc = mdb_env_open(env, dir.c_str(), flags, 0666);
    if (rc) {
        mdb_env_close(env);
        if (rc == MDB_INVALID)
            return makeError(Errc::Corrupt,
                             dir + " is not a possync data directory (data.mdb is not an LMDB environment)");
        if (rc == MDB_VERSION_MISMATCH)
            return makeError(Errc::Version, dir + " was written by an incompatible LMDB version");
        if (rc == EACCES) {
            // Say which file and why: LMDB's readers register in lock.mdb, so even a reader needs
            // to write it; a user who may only read the directory cannot open it at all.
            const std::string uid = std::to_string(::geteuid());
            for (const char* name : {"data.mdb", "lock.mdb"}) {
                const std::string path = dir + "/" + name;
                const bool lock = std::string(name) == "lock.mdb";
                if (::access(path.c_str(), F_OK) != 0) continue;
                if (::access(path.c_str(), R_OK) != 0)
                    return makeError(Errc::Io, "open data directory " + dir + ": " + path +
                                                   " is not readable by this user (uid " + uid + ")");
                if ((lock || !options.readOnly) && ::access(path.c_str(), W_OK) != 0)
                    return makeError(Errc::Io, "open data directory " + dir + ": " + path +
                                                   " is not writable by this user (uid " + uid + ")" +
                                                   (lock ? "; LMDB readers register in it, so reading needs "
                                                           "write access too: run as the daemon's user or in "
                                                           "its group (possync)"
                                                         : ""));
            }
        }
        return fromMdb(rc, "open data directory " + dir);
    }
    return std::unique_ptr<Env>(new Env(env, dir));
}

Env::~Env() {
    mdb_env_close(env_);
}

size_t Env::maxKeySize() const {
    return static_cast<size_t>(mdb_env_get_maxkeysize(env_));
}

size_t Env::mapSize() const {
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    return info.me_mapsize;
}

Status Env::setMapSize(size_t bytes) {
    if (bytes > maxMapSize()) return makeError(Errc::TooLarge, "map size too large for this board");
    int rc = mdb_env_set_mapsize(env_, bytes);
    if (rc) return fromMdb(rc, "set map size");
    return {};
}

Status Env::sync() {
    int rc = mdb_env_sync(env_, 1);
    if (rc) return fromMdb(rc, "sync data directory");
    return {};
}

Txn& Txn::operator=(Txn&& o) noexcept {
    if (this != &o) {
        abort();
        txn_ = o.txn_;
        write_ = o.write_;
        env_ = o.env_;
        epoch_ = o.epoch_;
        opened_ = std::move(o.opened_);
        o.txn_ = nullptr;
    }
    return *this;
}

void Txn::ended(bool committed) {
    std::lock_guard<std::mutex> lock(env_->mutex_);
    --env_->openTxns_;
    if (committed && !opened_.empty()) {
        uint64_t epoch = ++env_->dbiEpoch_;
        for (auto& [name, dbi] : opened_) env_->handles_[name] = Env::Handle{dbi, epoch};
    }
    opened_.clear();
}

Result<Txn> Txn::begin(Env& env, bool write) {
    MDB_txn* txn = nullptr;
    int rc = mdb_txn_begin(env.raw(), nullptr, write ? 0 : MDB_RDONLY, &txn);
    if (rc == MDB_MAP_RESIZED) {
        // Another process grew the map: adopt its size and try once more.
        mdb_env_set_mapsize(env.raw(), 0);
        rc = mdb_txn_begin(env.raw(), nullptr, write ? 0 : MDB_RDONLY, &txn);
    }
    if (rc) return fromMdb(rc, write ? "begin write transaction" : "begin read transaction");
    std::lock_guard<std::mutex> lock(env.mutex_);
    ++env.openTxns_;
    return Txn(txn, write, &env, env.dbiEpoch_);
}

Result<Dbi> Txn::open(std::string_view name, bool create) {
    std::string n(name);
    for (auto& [opened, dbi] : opened_)
        if (opened == n) return dbi;
    std::lock_guard<std::mutex> lock(env_->mutex_);
    auto it = env_->handles_.find(n);
    if (it != env_->handles_.end() && it->second.epoch <= epoch_) return it->second.dbi;
    if (env_->openTxns_ > 1) {
        // Not allowed to open a handle now (see Env). Whether the database exists in this
        // transaction's view still has an answer: its name is a key of the main database.
        MDB_dbi main;  // a NULL name gives the main database without taking a slot
        int rc = mdb_dbi_open(txn_, nullptr, 0, &main);
        if (rc) return fromMdb(rc, "open main database");
        MDB_val k{n.size(), n.data()}, v;
        rc = mdb_get(txn_, main, &k, &v);
        if (rc == MDB_NOTFOUND && !create) return makeError(Errc::NotFound, "no such table: " + n);
        if (rc && rc != MDB_NOTFOUND) return fromMdb(rc, "look up table " + n);
        return makeError(Errc::Busy, "table " + n +
                                         " is new to this process and cannot be opened while another of "
                                         "its transactions is open; try again");
    }
    MDB_dbi dbi;
    int rc = mdb_dbi_open(txn_, n.c_str(), (create && write_) ? MDB_CREATE : 0, &dbi);
    if (rc == MDB_NOTFOUND) return makeError(Errc::NotFound, "no such table: " + n);
    if (rc) return fromMdb(rc, "open table " + n);
    opened_.emplace_back(std::move(n), dbi);
    return Dbi(dbi);
}

Status Txn::openAll() {
    auto names = listDatabases(*this);
    if (!names) return names.takeError();
    for (const auto& n : *names) {
        auto d = open(n, false);
        if (!d) return d.takeError();
    }
    return {};
}

Result<std::optional<Bytes>> Txn::get(Dbi dbi, Bytes key) const {
    MDB_val k = toVal(key), v;
    int rc = mdb_get(txn_, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return std::optional<Bytes>();
    if (rc) return fromMdb(rc, "get");
    return std::optional<Bytes>(fromVal(v));
}

Status Txn::put(Dbi dbi, Bytes key, Bytes value, unsigned flags) {
    MDB_val k = toVal(key), v = toVal(value);
    int rc = mdb_put(txn_, dbi, &k, &v, flags);
    if (rc) return fromMdb(rc, "put");
    return {};
}

Result<uint8_t*> Txn::reserve(Dbi dbi, Bytes key, size_t size) {
    MDB_val k = toVal(key), v{size, nullptr};
    int rc = mdb_put(txn_, dbi, &k, &v, MDB_RESERVE);
    if (rc) return fromMdb(rc, "put");
    return static_cast<uint8_t*>(v.mv_data);
}

Result<bool> Txn::del(Dbi dbi, Bytes key) {
    MDB_val k = toVal(key);
    int rc = mdb_del(txn_, dbi, &k, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    if (rc) return fromMdb(rc, "del");
    return true;
}

Status Txn::clear(Dbi dbi) {
    int rc = mdb_drop(txn_, dbi, 0);
    if (rc) return fromMdb(rc, "clear");
    return {};
}

Result<uint64_t> Txn::entries(Dbi dbi) const {
    MDB_stat st;
    int rc = mdb_stat(txn_, dbi, &st);
    if (rc) return fromMdb(rc, "stat");
    return uint64_t(st.ms_entries);
}

Status Txn::commit() {
    if (!txn_) return makeError(Errc::Closed, "commit: no open transaction");
    int rc = mdb_txn_commit(txn_);
    txn_ = nullptr;
    ended(rc == 0);
    if (rc) return fromMdb(rc, "commit");
    return {};
}

void Txn::abort() {
    if (!txn_) return;
    mdb_txn_abort(txn_);
    txn_ = nullptr;
    ended(false);
}

Result<Cursor> Cursor::open(const Txn& txn, Dbi dbi) {
    MDB_cursor* cur = nullptr;
    int rc = mdb_cursor_open(txn.raw(), dbi, &cur);
    if (rc) return fromMdb(rc, "open cursor");
    return Cursor(cur);
}

Cursor::~Cursor() {
    if (cur_) mdb_cursor_close(cur_);
}

Result<bool> Cursor::get(Bytes& key, Bytes& value, int op) {
    MDB_val k = toVal(key), v;
    int rc = mdb_cursor_get(cur_, &k, &v, static_cast<MDB_cursor_op>(op));
    if (rc == MDB_NOTFOUND) return false;
    if (rc) return fromMdb(rc, "cursor");
    key = fromVal(k);
    value = fromVal(v);
    return true;
}

Result<bool> Cursor::first(Bytes& key, Bytes& value) {
    return get(key, value, MDB_FIRST);
}
Result<bool> Cursor::last(Bytes& key, Bytes& value) {
    return get(key, value, MDB_LAST);
}
Result<bool> Cursor::next(Bytes& key, Bytes& value) {
    return get(key, value, MDB_NEXT);
}
Result<bool> Cursor::seek(Bytes key, Bytes& foundKey, Bytes& value) {
    foundKey = key;
    return get(foundKey, value, MDB_SET_RANGE);
}

Status Cursor::del() {
    int rc = mdb_cursor_del(cur_, 0);
    if (rc) return fromMdb(rc, "cursor del");
    return {};
}

Result<std::vector<std::string>> listDatabases(const Txn& txn) {
    MDB_dbi main;
    int rc = mdb_dbi_open(txn.raw(), nullptr, 0, &main);
    if (rc) return fromMdb(rc, "open main database");
    auto cur = Cursor::open(txn, main);
    if (!cur) return cur.takeError();
    std::vector<std::string> names;
    Bytes k, v;
    for (auto r = cur->first(k, v);; r = cur->next(k, v)) {
        if (!r) return r.takeError();
        if (!*r) break;
        names.push_back(k.str());
    }
    return names;
}

}  // namespace possync::lmdb
