/* possync.h - C API for POS applications: open a board's data directory, read and write tables.
 *
 * Writes go through the same change capture as the daemon and the possync tool: every committed
 * transaction that touches a watched table is logged and replicated to the slaves, and a running
 * possyncd on the same directory is woken within milliseconds.
 *
 * Every board writes (README "Writes on every board"). On the master a commit applies at once.
 * On a slave, the writes of one transaction to the tables its master shares (watched tables)
 * become ONE request in the slave's durable outbox: possync_commit_request returns its id, the
 * daemon forwards it, the master applies it exactly once (checking its conditions) and the
 * change comes back to every board. Writes to a slave's other tables apply locally at once.
 * When is a write durable?
 *   - queued locally: possync_commit returned (the outbox is in the slave's LMDB; fsynced);
 *   - committed on the master: the master applied it (or rejected it, with a reason);
 *   - applied locally: possync_wait returned POSSYNC_OK; readers on this board see it.
 * A rejected request applies nothing anywhere; possync_wait returns POSSYNC_EREJECTED and
 * possync_last_error names the failed condition's table and key. Reads on a slave show the
 * master's order: a queued request is not visible to readers until it comes back applied.
 * If the operator replaces the master's data (a new generation), queued requests written
 * against the old data are kept and reported (`possync outbox`), never applied to the new data.
 *
 * Errors: every function returns 0 or a negative POSSYNC_E* code; possync_last_error(db) gives
 * the one-line reason of the last call on that handle (empty after a success). Handles are not
 * thread-safe: use one handle per thread, or lock around it. One write transaction at a time per
 * directory (LMDB's writer lock); possync_begin blocks while another process writes, except on a
 * slave taking a FULL sync, where it is refused at once (POSSYNC_EBUSY).
 *
 * The map size is the one stored in the directory (a daemon's --map-size holds for every
 * process); a new directory gets 1 GiB (512 MiB on 32-bit boards). Files are created with mode
 * 0666 less the process umask. The library never writes to stderr: see possync_set_log_callback.
 */
#ifndef POSSYNC_H
#define POSSYNC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A C API keeps C names (clang-tidy's C++ naming rules do not apply). */
/* NOLINTBEGIN(readability-identifier-naming) */

enum {
    POSSYNC_OK = 0,
    POSSYNC_EINVAL = -1,     /* bad argument (empty key, reserved table name, ...) */
    POSSYNC_ENOTFOUND = -2,  /* no such key or table */
    POSSYNC_EMAPFULL = -3,   /* the database map is full: raise map_size */
    POSSYNC_ETOOLARGE = -4,  /* key or transaction over a limit */
    POSSYNC_EREFUSED = -5,   /* not allowed here (a slave's directory) */
    POSSYNC_EIO = -6,        /* the OS or LMDB failed */
    POSSYNC_ECORRUPT = -7,   /* not a possync directory, or damaged */
    POSSYNC_EVERSION = -8,   /* written by a newer possync */
    POSSYNC_ERANGE = -9,     /* possync_get: the buffer is too small (*value_len says how big) */
    POSSYNC_EREJECTED = -10, /* a condition did not hold: nothing was written (last_error says which) */
    POSSYNC_EBUSY = -11,     /* try again in a moment (a slave taking a FULL sync from its master) */
    POSSYNC_EPENDING = -12,  /* possync_wait: not applied on this board yet (timeout) */
    POSSYNC_EFULL = -13      /* a slave's outbox is full (--outbox-max-bytes): nothing was queued */
};

/* possync_require: what must hold of a key for the transaction to apply. */
enum {
    POSSYNC_REQUIRE_ABSENT = 0,  /* the key does not exist */
    POSSYNC_REQUIRE_PRESENT = 1, /* the key exists */
    POSSYNC_REQUIRE_VALUE = 2    /* the key holds exactly this value (compared by XXH64 hash) */
};

typedef struct possync_db possync_db;
typedef struct possync_txn possync_txn;

/* Log levels given to the log callback. */
enum { POSSYNC_LOG_DEBUG = 0, POSSYNC_LOG_INFO = 1, POSSYNC_LOG_WARNING = 2, POSSYNC_LOG_ERROR = 3 };

/* Receives the library's log lines (one line, no newline; valid during the call only). It may be
 * called from any thread that calls into the library, while the library holds a lock: it must
 * not call back into possync. */
typedef void (*possync_log_fn)(int level, const char* message, void* user);
/* Sets the process-wide log callback; NULL (the default) drops the library's log lines. */
void possync_set_log_callback(possync_log_fn fn, void* user);

/* Opens (creating when missing) the data directory. On failure *db is still set when the error
 * can be described (read it with possync_last_error, then possync_close), else NULL. */
int possync_open(const char* dir, possync_db** db);
/* Closes the handle. Transactions still open on it are aborted and freed: do not use them after. */
void possync_close(possync_db* db);
const char* possync_last_error(const possync_db* db);

/* Reads one committed value into buf (capacity cap). *value_len gets the value's length, also
 * when the buffer is too small (POSSYNC_ERANGE). */
int possync_get(possync_db* db, const char* table, const void* key, size_t key_len, void* buf, size_t cap,
                size_t* value_len);

/* Write transactions. A failed put/del/clear (a bad argument included) poisons the transaction:
 * later puts/dels/clears return that error, and commit aborts and returns it, writing nothing. */
int possync_begin(possync_db* db, possync_txn** txn);
int possync_put(possync_txn* txn, const char* table, const void* key, size_t key_len, const void* value,
                size_t value_len);
/* Returns POSSYNC_ENOTFOUND when the key was absent (the transaction stays usable). */
int possync_del(possync_txn* txn, const char* table, const void* key, size_t key_len);
int possync_clear(possync_txn* txn, const char* table);
/* Adds delta to the key's value, an 8-byte big-endian signed integer (absent: 0), e.g. stock
 * counts. On a slave the master computes the sum, so concurrent ADDs from every till add up. A
 * value of another size or an overflow fails the transaction (on a slave: rejects the request). */
int possync_add(possync_txn* txn, const char* table, const void* key, size_t key_len, int64_t delta);
/* A precondition (POSSYNC_REQUIRE_*; value/value_len for POSSYNC_REQUIRE_VALUE only). On the
 * master it is checked at once: a failed one poisons the transaction with POSSYNC_EREJECTED. On
 * a slave the master checks it when it applies the request: then possync_wait says
 * POSSYNC_EREJECTED, and nothing of the transaction was applied anywhere. */
int possync_require(possync_txn* txn, const char* table, const void* key, size_t key_len, int what,
                    const void* value, size_t value_len);
/* Commits and frees txn. *seq (may be NULL) gets the change log seq, 0 if nothing watched changed
 * (on a slave: 0, the request is queued; see possync_commit_request). */
int possync_commit(possync_txn* txn, uint64_t* seq);
/* Commits and frees txn. *request gets the id of the request queued on a slave (> 0), or 0 when
 * everything was applied at once (on the master, or a slave's local tables only). */
int possync_commit_request(possync_txn* txn, uint64_t* request);
/* Read-your-writes: waits up to timeout_ms (0: just look) until request is applied on this
 * board. POSSYNC_OK: applied, *seq (may be NULL) is the master's seq that carried it;
 * POSSYNC_EPENDING: not yet (still queued, or on its way back); POSSYNC_EREJECTED: the master
 * rejected it (possync_last_error says why); POSSYNC_ENOTFOUND: no such request, or its outcome
 * is no longer kept (the last 4096 are). Request 0 returns POSSYNC_OK at once. */
int possync_wait(possync_db* db, uint64_t request, int timeout_ms, uint64_t* seq);
/* Aborts and frees txn. */
void possync_abort(possync_txn* txn);

/* NOLINTEND(readability-identifier-naming) */

#ifdef __cplusplus
}
#endif

#endif /* POSSYNC_H */
