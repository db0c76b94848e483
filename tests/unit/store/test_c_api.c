/* The C API as a POS application in C would use it. */
#define _DEFAULT_SOURCE
#include <malloc.h>
#include <possync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        } else {                                                                     \
            passes++;                                                                \
        }                                                                            \
    } while (0)

static int logged;
static void on_log(int level, const char* message, void* user) {
    (void)level;
    if (user == &logged && message && *message) logged++;
}

/* possync_close with a transaction still open must abort and free it. A leaked write
 * transaction keeps its dirty pages and its captured change model: closing 100 handles that
 * each left a 256 KiB put open would leave tens of MiB on the heap. */
static int close_frees_open_txn(const char* dir) {
    static char value[256 * 1024];
    memset(value, 'v', sizeof value);
    size_t before = 0;
    for (int i = 0; i < 100; ++i) {
        possync_db* db = NULL;
        possync_txn* txn = NULL;
        if (possync_open(dir, &db) != POSSYNC_OK || possync_begin(db, &txn) != POSSYNC_OK) return 0;
        if (possync_put(txn, "menu", "left", 4, value, sizeof value) != POSSYNC_OK) return 0;
        possync_close(db);                         /* aborts and frees txn */
        if (i == 9) before = mallinfo2().uordblks; /* after warm-up (first-use allocations) */
    }
    size_t after = mallinfo2().uordblks;
    size_t grown = after > before ? after - before : 0;
    if (grown > (4u << 20))
        fprintf(stderr, "heap grew %zu bytes over 90 closes with an open transaction\n", grown);
    possync_db* db = NULL;
    char buf[8];
    size_t len = 0;
    int absent = possync_open(dir, &db) == POSSYNC_OK &&
                 possync_get(db, "menu", "left", 4, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND;
    possync_close(db);
    return grown <= (4u << 20) && absent;
}

int main(void) {
    int failures = 0, passes = 0;
    char dir[] = "/tmp/possync-capi-XXXXXX";
    if (!mkdtemp(dir)) return 1;

    possync_db* db = NULL;
    CHECK(possync_open(dir, &db) == POSSYNC_OK);

    possync_txn* txn = NULL;
    CHECK(possync_begin(db, &txn) == POSSYNC_OK);
    CHECK(possync_put(txn, "menu", "burger", 6, "5.50", 4) == POSSYNC_OK);
    CHECK(possync_del(txn, "menu", "nope", 4) == POSSYNC_ENOTFOUND);
    uint64_t seq = 99;
    CHECK(possync_commit(txn, &seq) == POSSYNC_OK);
    CHECK(seq == 0); /* nothing watched yet */

    char buf[16];
    size_t len = 0;
    CHECK(possync_get(db, "menu", "burger", 6, buf, sizeof buf, &len) == POSSYNC_OK);
    CHECK(len == 4 && memcmp(buf, "5.50", 4) == 0);
    CHECK(possync_get(db, "menu", "burger", 6, buf, 2, &len) == POSSYNC_ERANGE);
    CHECK(len == 4);
    CHECK(possync_get(db, "menu", "pizza", 5, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);
    CHECK(possync_get(db, "nosuchtable", "k", 1, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);

    CHECK(possync_begin(db, &txn) == POSSYNC_OK);
    CHECK(possync_put(txn, "menu", "fries", 5, "2", 1) == POSSYNC_OK);
    possync_abort(txn);
    CHECK(possync_get(db, "menu", "fries", 5, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);

    CHECK(possync_begin(db, &txn) == POSSYNC_OK);
    CHECK(possync_clear(txn, "menu") == POSSYNC_OK);
    CHECK(possync_commit(txn, NULL) == POSSYNC_OK);
    CHECK(possync_get(db, "menu", "burger", 6, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);

    /* A rejected put poisons the transaction: commit fails with that error and writes nothing. */
    CHECK(possync_begin(db, &txn) == POSSYNC_OK);
    CHECK(possync_put(txn, "menu", "cola", 4, "1.20", 4) == POSSYNC_OK);
    CHECK(possync_put(txn, "menu", "", 0, "x", 1) == POSSYNC_EINVAL);
    CHECK(strcmp(possync_last_error(db), "key is empty") == 0);
    CHECK(possync_put(txn, "menu", "tea", 3, "0.90", 4) == POSSYNC_EINVAL); /* poisoned */
    CHECK(possync_commit(txn, NULL) == POSSYNC_EINVAL);
    CHECK(strstr(possync_last_error(db), "key is empty") != NULL);
    CHECK(possync_get(db, "menu", "cola", 4, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);
    CHECK(possync_begin(db, &txn) == POSSYNC_OK);
    CHECK(possync_put(txn, "menu", "cola", 4, "1.20", 4) == POSSYNC_OK);
    CHECK(possync_put(txn, "possync.log", "k", 1, "x", 1) == POSSYNC_EINVAL);
    CHECK(possync_commit(txn, NULL) == POSSYNC_EINVAL);

    /* possync_last_error describes the last call: cleared by a success, set by ENOTFOUND. */
    CHECK(possync_begin(db, &txn) == POSSYNC_OK);
    CHECK(strcmp(possync_last_error(db), "") == 0);
    CHECK(possync_put(txn, "menu", "cola", 4, "1.20", 4) == POSSYNC_OK);
    CHECK(possync_del(txn, "menu", "nope", 4) == POSSYNC_ENOTFOUND);
    CHECK(strstr(possync_last_error(db), "nope") != NULL ||
          strstr(possync_last_error(db), "no such key") != NULL);
    CHECK(possync_commit(txn, NULL) == POSSYNC_OK); /* ENOTFOUND from del does not poison */
    CHECK(strcmp(possync_last_error(db), "") == 0);
    CHECK(possync_get(db, "menu", "cola", 4, buf, sizeof buf, &len) == POSSYNC_OK);
    CHECK(strcmp(possync_last_error(db), "") == 0);
    CHECK(possync_get(db, "menu", "pizza", 5, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);
    CHECK(strstr(possync_last_error(db), "no such key") != NULL);
    CHECK(possync_get(db, "menu", "cola", 4, buf, sizeof buf, &len) == POSSYNC_OK);
    CHECK(strcmp(possync_last_error(db), "") == 0); /* not the stale ENOTFOUND message */
    possync_close(db);

    /* The library writes nothing to the application's stderr by default; a log callback gets
     * its messages (opening a fresh directory logs its new generation at info level). */
    char fresh[64];
    snprintf(fresh, sizeof fresh, "%s/fresh", dir);
    fflush(stderr);
    int saved = dup(2);
    char errfile[64];
    snprintf(errfile, sizeof errfile, "%s/stderr.txt", dir);
    FILE* capture = fopen(errfile, "w");
    CHECK(capture != NULL && saved >= 0);
    if (capture) dup2(fileno(capture), 2);
    CHECK(possync_open(fresh, &db) == POSSYNC_OK);
    possync_close(db);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    if (capture) fclose(capture);
    FILE* in = fopen(errfile, "r");
    long written = -1;
    if (in) {
        fseek(in, 0, SEEK_END);
        written = ftell(in);
        fclose(in);
    }
    CHECK(written == 0);
    snprintf(fresh, sizeof fresh, "%s/fresh2", dir);
    possync_set_log_callback(on_log, &logged);
    CHECK(possync_open(fresh, &db) == POSSYNC_OK);
    possync_close(db);
    CHECK(logged > 0);
    possync_set_log_callback(NULL, NULL);

    CHECK(close_frees_open_txn(dir));

    possync_db* bad = NULL;
    char file[64];
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    CHECK(possync_open(file, &bad) != POSSYNC_OK);
    CHECK(bad != NULL && strstr(possync_last_error(bad), "not a directory") != NULL);
    possync_close(bad);

    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) failures++;
    printf("%d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
