/* possync.h - C API for POS applications: open a board's data directory, read and write tables.
 *
 * Writes go through the same change capture as the daemon and the possync tool: every committed
 * transaction that touches a watched table is logged and replicated to the slaves, and a running
 * possyncd on the same directory is woken within milliseconds. On a slave's directory writes are
 * refused (POSSYNC_EREFUSED).
 *
 * Errors: every function returns 0 or a negative POSSYNC_E* code; possync_last_error(db) gives
 * the one-line reason of the last call on that handle (empty after a success). Handles are not
 * thread-safe: use one handle per thread, or lock around it. One write transaction at a time per
 * directory (LMDB's writer lock); possync_begin blocks while another process writes, except on a
 * slave's directory, where it is refused at once.
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
    POSSYNC_EINVAL = -1,    /* bad argument (empty key, reserved table name, ...) */
    POSSYNC_ENOTFOUND = -2, /* no such key or table */
    POSSYNC_EMAPFULL = -3,  /* the database map is full: raise map_size */
    POSSYNC_ETOOLARGE = -4, /* key or transaction over a limit */
    POSSYNC_EREFUSED = -5,  /* not allowed here (a slave's directory) */
    POSSYNC_EIO = -6,       /* the OS or LMDB failed */
    POSSYNC_ECORRUPT = -7,  /* not a possync directory, or damaged */
    POSSYNC_EVERSION = -8,  /* written by a newer possync */
    POSSYNC_ERANGE = -9     /* possync_get: the buffer is too small (*value_len says how big) */
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
/* Commits and frees txn. *seq (may be NULL) gets the change log seq, 0 if nothing watched changed. */
int possync_commit(possync_txn* txn, uint64_t* seq);
/* Aborts and frees txn. */
void possync_abort(possync_txn* txn);

/* NOLINTEND(readability-identifier-naming) */

#ifdef __cplusplus
}
#endif

#endif /* POSSYNC_H */
