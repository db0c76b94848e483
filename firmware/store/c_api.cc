// The C API of possync.h over store::Store.
//
// Error state: every call that takes a handle first clears possync_last_error, so the message
// always describes the last call (empty after a success). A transaction whose put/del/clear
// failed is poisoned here, whatever the reason (a bad argument included): later writes and
// commit return that first error and commit aborts, so a half-done transaction never commits.
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <ctime>
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
        case Errc::Rejected: return POSSYNC_EREJECTED;
        case Errc::Busy: return POSSYNC_EBUSY;
        case Errc::Full: return POSSYNC_EFULL;
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

int possync_add(possync_txn* t, const char* table, const void* key, size_t key_len, int64_t delta) {
    if (!t) return POSSYNC_EINVAL;
    t->db->error.clear();
    if (t->poisoned) return refusePoisoned(t);
    if (!table || !key) return poison(t, makeError(Errc::InvalidArgument, "bad argument"));
    auto r = t->txn.add(table, Bytes(key, key_len), delta);
    return r ? POSSYNC_OK : poison(t, r.error());
}

int possync_require(possync_txn* t, const char* table, const void* key, size_t key_len, int what,
                    const void* value, size_t value_len) {
    if (!t) return POSSYNC_EINVAL;
    t->db->error.clear();
    if (t->poisoned) return refusePoisoned(t);
    if (!table || !key || (what == POSSYNC_REQUIRE_VALUE && !value && value_len) ||
        (what != POSSYNC_REQUIRE_ABSENT && what != POSSYNC_REQUIRE_PRESENT && what != POSSYNC_REQUIRE_VALUE))
        return poison(t, makeError(Errc::InvalidArgument, "bad argument"));
    store::Require r = what == POSSYNC_REQUIRE_ABSENT    ? store::Require::Absent
                       : what == POSSYNC_REQUIRE_PRESENT ? store::Require::Present
                                                         : store::Require::ValueHash;
    uint64_t hash = what == POSSYNC_REQUIRE_VALUE ? store::valueHash(Bytes(value, value_len)) : 0;
    auto st = t->txn.require(table, Bytes(key, key_len), r, hash);
    return st ? POSSYNC_OK : poison(t, st.error());
}

namespace {

int commitTxn(possync_txn* t, store::CommitInfo* out) {
    possync_db* db = t->db;
    db->error.clear();
    if (t->poisoned) {
        Error e = *t->poisoned;
        t->txn.abort();
        endTxn(t);
        return failWith(db, e);
    }
    auto r = t->txn.commitWrite();
    endTxn(t);
    if (!r) return failWith(db, r.error());
    *out = *r;
    return POSSYNC_OK;
}

uint64_t nowMs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

}  // namespace

int possync_commit(possync_txn* t, uint64_t* seq) {
    if (!t) return POSSYNC_EINVAL;
    store::CommitInfo info;
    int rc = commitTxn(t, &info);
    if (rc == POSSYNC_OK && seq) *seq = info.seq;
    return rc;
}

int possync_commit_request(possync_txn* t, uint64_t* request) {
    if (!t) return POSSYNC_EINVAL;
    store::CommitInfo info;
    int rc = commitTxn(t, &info);
    if (rc == POSSYNC_OK && request) *request = info.request;
    return rc;
}

int possync_wait(possync_db* db, uint64_t request, int timeout_ms, uint64_t* seq) {
    if (db) db->error.clear();
    if (!db || !db->store || timeout_ms < 0)
        return failWith(db, makeError(Errc::InvalidArgument, "bad argument"));
    if (request == 0) {
        auto m = db->store->meta();
        if (!m) return failWith(db, m.error());
        if (seq) *seq = m->seq;
        return POSSYNC_OK;
    }
    // The daemon touches DIR/possync.notify when it applies one of this board's requests:
    // wait on that (inotify), re-checking at least every 100 ms in case a wake-up is missed.
    int ino = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
    if (ino >= 0 && inotify_add_watch(ino, db->store->notifyPath().c_str(), IN_ATTRIB | IN_MODIFY) < 0) {
        close(ino);
        ino = -1;
    }
    const uint64_t deadline = nowMs() + uint64_t(timeout_ms);
    int rc;
    while (true) {
        auto st = db->store->requestState(request);
        if (!st) {
            rc = failWith(db, st.error());
            break;
        }
        if (st->kind == store::RequestState::Committed) {
            if (seq) *seq = st->seq;
            rc = POSSYNC_OK;
            break;
        }
        if (st->kind == store::RequestState::Rejected) {
            db->error = "request " + std::to_string(request) + " rejected by the master: " + st->reason;
            rc = POSSYNC_EREJECTED;
            break;
        }
        if (st->kind == store::RequestState::Unknown) {
            rc = failWith(db, makeError(Errc::NotFound, st->reason));
            break;
        }
        uint64_t now = nowMs();
        if (now >= deadline) {
            db->error = "request " + std::to_string(request) + " is not applied on this board yet";
            rc = POSSYNC_EPENDING;
            break;
        }
        int slice = int(std::min<uint64_t>(deadline - now, 100));
        if (ino >= 0) {
            pollfd p{ino, POLLIN, 0};
            if (poll(&p, 1, slice) > 0) {
                char buf[4096];
                while (read(ino, buf, sizeof buf) > 0) {
                }
            }
        } else {
            usleep(unsigned(std::min(slice, 5)) * 1000);
        }
    }
    if (ino >= 0) close(ino);
    return rc;
}

void possync_abort(possync_txn* t) {
    if (!t) return;
    t->txn.abort();
    endTxn(t);
}

}  // extern "C"
