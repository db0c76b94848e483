// The C API of possync.h over store::Store.
//
// Error state: every call that takes a handle first clears possync_last_error, so the message
// always describes the last call (empty after a success). A transaction whose put/del/clear
// failed is poisoned here, whatever the reason (a bad argument included): later writes and
// commit return that first error and commit aborts, so a half-done transaction never commits.
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "log/log.h"

#include "possync.h"
#include "store/store.h"

using namespace possync;

struct possync_db {
    std::unique_ptr<store::Store> store;
    std::string error;
    // Transactions begun on this handle and not yet ended: possync_close aborts them.
    std::set<possync_txn*> txns;
};

struct possync_txn {
    possync_db* db;
    store::WriteTxn txn;
    std::optional<Error> poisoned;  // the first failed write
};

namespace {

int code(Errc e) {
    switch (e) {
        case Errc::InvalidArgument: return POSSYNC_EINVAL;
        case Errc::NotFound: return POSSYNC_ENOTFOUND;
        case Errc::MapFull: return POSSYNC_EMAPFULL;
        case Errc::TooLarge: return POSSYNC_ETOOLARGE;
        case Errc::Refused: return POSSYNC_EREFUSED;
        case Errc::Corrupt: return POSSYNC_ECORRUPT;
        case Errc::Version: return POSSYNC_EVERSION;
        default: return POSSYNC_EIO;
    }
}

int failWith(possync_db* db, const Error& e) {
    if (db) db->error = e.message;
    return code(e.code);
}

int poison(possync_txn* t, const Error& e) {
    if (!t->poisoned) t->poisoned = e;
    return failWith(t->db, e);
}

// A poisoned transaction refuses further writes with its first error.
int refusePoisoned(possync_txn* t) {
    t->db->error = "the transaction already failed: " + t->poisoned->message;
    return code(t->poisoned->code);
}

// The library's log lines go to the application's callback, never to its stderr.
struct LogTarget {
    std::mutex mutex;
    possync_log_fn fn = nullptr;
    void* user = nullptr;
};

LogTarget& logTarget() {
    static LogTarget* target = [] {
        auto* t = new LogTarget;  // never freed: log lines may come during static destruction
        log::setStderr(false);
        log::addSink([t](const log::Line& line) {
            std::lock_guard<std::mutex> lock(t->mutex);
            if (t->fn)
                t->fn(int(line.level), (std::string(line.category) + ": " + line.text).c_str(), t->user);
        });
        return t;
    }();
    return *target;
}

void endTxn(possync_txn* t) {
    t->db->txns.erase(t);
    delete t;
}

}  // namespace

extern "C" {

void possync_set_log_callback(possync_log_fn fn, void* user) {
    LogTarget& t = logTarget();
    std::lock_guard<std::mutex> lock(t.mutex);
    t.fn = fn;
    t.user = user;
}

int possync_open(const char* dir, possync_db** out) {
    logTarget();  // silence stderr before the store can log
    if (!out) return POSSYNC_EINVAL;
    *out = nullptr;
    if (!dir) return POSSYNC_EINVAL;
    auto db = std::make_unique<possync_db>();
    auto s = store::Store::open(dir, store::StoreOptions{});
    if (!s) {
        int rc = failWith(db.get(), s.error());
        *out = db.release();
        return rc;
    }
    db->store = std::move(*s);
    *out = db.release();
    return POSSYNC_OK;
}

void possync_close(possync_db* db) {
    if (!db) return;
    // Abort what the application left open before the environment closes: an open write
    // transaction would otherwise keep LMDB's writer lock (and leak its memory).
    for (possync_txn* t : db->txns) {
        t->txn.abort();
        delete t;
    }
    db->txns.clear();
    delete db;
}

const char* possync_last_error(const possync_db* db) {
    return db ? db->error.c_str() : "no handle";
}

int possync_get(possync_db* db, const char* table, const void* key, size_t key_len, void* buf, size_t cap,
                size_t* value_len) {
    if (db) db->error.clear();
    if (!db || !db->store || !table || !key)
        return failWith(db, makeError(Errc::InvalidArgument, "bad argument"));
    auto rt = db->store->beginRead();
    if (!rt) return failWith(db, rt.error());
    auto v = rt->get(table, Bytes(key, key_len));
    if (!v) return failWith(db, v.error());
    if (!*v) return failWith(db, makeError(Errc::NotFound, std::string("no such key in ") + table));
    if (value_len) *value_len = (*v)->size;
    if ((*v)->size > cap) return failWith(db, makeError(Errc::TooLarge, "buffer too small")), POSSYNC_ERANGE;
    if ((*v)->size) std::memcpy(buf, (*v)->data, (*v)->size);
    return POSSYNC_OK;
}

int possync_begin(possync_db* db, possync_txn** out) {
    if (db) db->error.clear();
    if (!db || !db->store || !out) return failWith(db, makeError(Errc::InvalidArgument, "bad argument"));
    *out = nullptr;
    auto w = db->store->beginWrite();
    if (!w) return failWith(db, w.error());
    auto* t = new possync_txn{db, std::move(*w), std::nullopt};
    db->txns.insert(t);
    *out = t;
    return POSSYNC_OK;
}

int possync_put(possync_txn* t, const char* table, const void* key, size_t key_len, const void* value,
                size_t value_len) {
    if (!t) return POSSYNC_EINVAL;
    t->db->error.clear();
    if (t->poisoned) return refusePoisoned(t);
    if (!table || !key || (!value && value_len))
        return poison(t, makeError(Errc::InvalidArgument, "bad argument"));
    auto r = t->txn.put(table, Bytes(key, key_len), Bytes(value, value_len));
    return r ? POSSYNC_OK : poison(t, r.error());
}

int possync_del(possync_txn* t, const char* table, const void* key, size_t key_len) {
    if (!t) return POSSYNC_EINVAL;
    t->db->error.clear();
    if (t->poisoned) return refusePoisoned(t);
    if (!table || !key) return poison(t, makeError(Errc::InvalidArgument, "bad argument"));
    auto r = t->txn.del(table, Bytes(key, key_len));
    if (!r) return poison(t, r.error());
    // An absent key is an answer, not a failure: the transaction stays usable.
    if (!*r) return failWith(t->db, makeError(Errc::NotFound, std::string("no such key in ") + table));
    return POSSYNC_OK;
}

int possync_clear(possync_txn* t, const char* table) {
    if (!t) return POSSYNC_EINVAL;
    t->db->error.clear();
    if (t->poisoned) return refusePoisoned(t);
    if (!table) return poison(t, makeError(Errc::InvalidArgument, "bad argument"));
    auto r = t->txn.clear(table);
    return r ? POSSYNC_OK : poison(t, r.error());
}

int possync_commit(possync_txn* t, uint64_t* seq) {
    if (!t) return POSSYNC_EINVAL;
    possync_db* db = t->db;
    db->error.clear();
    if (t->poisoned) {
        Error e = *t->poisoned;
        t->txn.abort();
        endTxn(t);
        return failWith(db, e);
    }
    auto r = t->txn.commit();
    endTxn(t);
    if (!r) return failWith(db, r.error());
    if (seq) *seq = *r;
    return POSSYNC_OK;
}

void possync_abort(possync_txn* t) {
    if (!t) return;
    t->txn.abort();
    endTxn(t);
}

}  // extern "C"
