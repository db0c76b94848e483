// The C API of possync.h over store::Store.
#include <cstring>
#include <memory>
#include <string>

#include "possync.h"
#include "store/store.h"

using namespace possync;

struct possync_db {
    std::unique_ptr<store::Store> store;
    std::string error;
};

struct possync_txn {
    possync_db* db;
    store::WriteTxn txn;
};

static int code(Errc e) {
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

static int failWith(possync_db* db, const Error& e) {
    if (db) db->error = e.message;
    return code(e.code);
}

extern "C" {

int possync_open(const char* dir, possync_db** out) {
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
    delete db;
}

const char* possync_last_error(const possync_db* db) {
    return db ? db->error.c_str() : "no handle";
}

int possync_get(possync_db* db, const char* table, const void* key, size_t key_len, void* buf, size_t cap,
                size_t* value_len) {
    if (!db || !db->store || !table || !key) return POSSYNC_EINVAL;
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
    if (!db || !db->store || !out) return POSSYNC_EINVAL;
    *out = nullptr;
    auto w = db->store->beginWrite();
    if (!w) return failWith(db, w.error());
    *out = new possync_txn{db, std::move(*w)};
    return POSSYNC_OK;
}

int possync_put(possync_txn* t, const char* table, const void* key, size_t key_len, const void* value,
                size_t value_len) {
    if (!t || !table || !key || (!value && value_len)) return POSSYNC_EINVAL;
    auto r = t->txn.put(table, Bytes(key, key_len), Bytes(value, value_len));
    return r ? POSSYNC_OK : failWith(t->db, r.error());
}

int possync_del(possync_txn* t, const char* table, const void* key, size_t key_len) {
    if (!t || !table || !key) return POSSYNC_EINVAL;
    auto r = t->txn.del(table, Bytes(key, key_len));
    if (!r) return failWith(t->db, r.error());
    return *r ? POSSYNC_OK : POSSYNC_ENOTFOUND;
}

int possync_clear(possync_txn* t, const char* table) {
    if (!t || !table) return POSSYNC_EINVAL;
    auto r = t->txn.clear(table);
    return r ? POSSYNC_OK : failWith(t->db, r.error());
}

int possync_commit(possync_txn* t, uint64_t* seq) {
    if (!t) return POSSYNC_EINVAL;
    std::unique_ptr<possync_txn> owned(t);
    auto r = t->txn.commit();
    if (!r) return failWith(t->db, r.error());
    if (seq) *seq = *r;
    return POSSYNC_OK;
}

void possync_abort(possync_txn* t) {
    if (!t) return;
    t->txn.abort();
    delete t;
}

}  // extern "C"
