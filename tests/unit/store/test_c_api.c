/* The C API as a POS application in C would use it. */
#define _DEFAULT_SOURCE
#include <possync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                              \
        } else {                                                                     \
            passes++;                                                                \
        }                                                                            \
    } while (0)

int main(void) {
    int failures = 0, passes = 0;
    char dir[] = "/tmp/possync-capi-XXXXXX";
    if (!mkdtemp(dir)) return 1;

    possync_db* db = NULL;
    CHECK(possync_open(dir, &db) == POSSYNC_OK);

    possync_txn* txn = NULL;
    CHECK(possync_begin(db, &txn) == POSSYNC_OK);
    CHECK(possync_put(txn, "menu", "burger", 6, "5.50", 4) == POSSYNC_OK);
    CHECK(possync_put(txn, "menu", "", 0, "x", 1) == POSSYNC_EINVAL);
    CHECK(strcmp(possync_last_error(db), "key is empty") == 0);
    CHECK(possync_put(txn, "possync.log", "k", 1, "x", 1) == POSSYNC_EINVAL);
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
    possync_close(db);

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
