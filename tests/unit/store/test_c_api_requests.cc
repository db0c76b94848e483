// The C API of slave writes (possync.h, DESIGN.md §9) as a POS application on a till sees it:
// possync_add / possync_require / possync_commit_request / possync_wait and the codes EFULL,
// EBUSY, EREJECTED, EPENDING. The slave directory is set up and the master played through
// store::Store (C++): the C API has no way to make a slave, which only a daemon does. LMDB must
// not be open twice in one process, so the C handle and the Store take turns on the slave.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "fixture.h"
#include "store/possync.h"
#include "store/requests.h"
#include "wire/change_model.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::test;

namespace {

const std::vector<std::string> kShared = {"orders", "stock"};

int64_t counterOf(const std::string& v) {
    REQUIRE(v.size() == 8);
    return static_cast<int64_t>(getBe64(reinterpret_cast<const uint8_t*>(v.data())));
}

// A master (open all along) and one slave directory synced to it (closed between steps).
struct Till {
    TempDir dm, ds;
    std::unique_ptr<store::Store> master;

    Till() {
        store::StoreOptions mo;
        mo.deviceId = "master";
        master = openStore(dm.path(), mo);
        REQUIRE_OK(master->setWatchedTables(kShared));
        auto s = slaveStore();
        REQUIRE_OK(s->setRole(store::Role::Slave));
        auto a = s->beginApply();
        REQUIRE_OK(a);
        REQUIRE_OK(a->beginFull(kShared));
        REQUIRE_OK(a->setPosition(master->meta()->generation, master->meta()->seq));
        REQUIRE_OK(a->commit());
    }
    std::unique_ptr<store::Store> slaveStore() {
        store::StoreOptions so;
        so.deviceId = "till1";
        return openStore(ds.path(), so);
    }

    // The daemon's round trip, with the C handle closed: forward the outbox, replicate back.
    void roundTrip() {
        auto s = slaveStore();
        std::vector<std::string> frames;
        REQUIRE_OK(s->readOutbox(0, [&](uint64_t, Bytes f) {
            frames.push_back(f.str());
            return true;
        }));
        for (auto& f : frames) {
            auto v = wire::verifyFrame(Bytes(f));
            REQUIRE_OK(v);
            auto o = master->applyRequest(wire::asWriteRequest(*v));
            REQUIRE_OK(o);
        }
        std::vector<std::pair<uint64_t, std::string>> log;
        REQUIRE_OK(master->readLog(s->meta()->seq + 1, 1000000, SIZE_MAX, [&](uint64_t seq, Bytes f) {
            log.emplace_back(seq, f.str());
            return true;
        }));
        for (auto& [seq, f] : log) {
            auto a = s->beginApply();
            REQUIRE_OK(a);
            REQUIRE_OK(a->apply(wire::asChangeModel(*wire::verifyFrame(Bytes(f)))));
            REQUIRE_OK(a->setPosition(master->meta()->generation, seq));
            REQUIRE_OK(a->commit());
        }
    }
};

struct Handle {
    possync_db* db = nullptr;
    explicit Handle(const std::string& dir) { REQUIRE(possync_open(dir.c_str(), &db) == POSSYNC_OK); }
    ~Handle() { possync_close(db); }
    Handle(const Handle&) = delete;
    Handle& operator=(const Handle&) = delete;
    std::string error() const { return possync_last_error(db); }
};

}  // namespace

TEST_SUITE("capi.requests") {
    TEST_CASE("possync_commit_request queues on a slave; possync_wait follows it to applied") {
        Till t;
        uint64_t req = 0;
        {
            Handle h(t.ds.path());
            possync_txn* txn = nullptr;
            REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
            CHECK(possync_put(txn, "orders", "o1", 2, "burger", 6) == POSSYNC_OK);
            CHECK(possync_add(txn, "stock", "cola", 4, -2) == POSSYNC_OK);
            CHECK(possync_put(txn, "notes", "n1", 2, "local", 5) == POSSYNC_OK);
            CHECK(possync_commit_request(txn, &req) == POSSYNC_OK);
            CHECK(req == 1);
            char buf[16];
            size_t len = 0;
            // Queued: not readable here yet; the local table is.
            CHECK(possync_get(h.db, "orders", "o1", 2, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);
            CHECK(possync_get(h.db, "notes", "n1", 2, buf, sizeof buf, &len) == POSSYNC_OK);
            uint64_t seq = 77;
            CHECK(possync_wait(h.db, 0, 0, &seq) == POSSYNC_OK);  // request 0: nothing to wait for
            CHECK(possync_wait(h.db, req, 0, &seq) == POSSYNC_EPENDING);
            CHECK(possync_wait(h.db, req, 30, &seq) == POSSYNC_EPENDING);
            CHECK(h.error().find("not applied") != std::string::npos);
            CHECK(possync_wait(h.db, 99, 0, &seq) == POSSYNC_ENOTFOUND);
            // A transaction of local tables only: request 0, applied at once.
            REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
            CHECK(possync_put(txn, "notes", "n2", 2, "x", 1) == POSSYNC_OK);
            uint64_t none = 5;
            CHECK(possync_commit_request(txn, &none) == POSSYNC_OK);
            CHECK(none == 0);
        }
        t.roundTrip();
        {
            Handle h(t.ds.path());
            uint64_t seq = 0;
            CHECK(possync_wait(h.db, req, 0, &seq) == POSSYNC_OK);
            CHECK(seq == t.master->meta()->seq);
            CHECK(h.error().empty());
            char buf[16];
            size_t len = 0;
            CHECK(possync_get(h.db, "orders", "o1", 2, buf, sizeof buf, &len) == POSSYNC_OK);
            CHECK(std::string(buf, len) == "burger");
            CHECK(possync_get(h.db, "stock", "cola", 4, buf, sizeof buf, &len) == POSSYNC_OK);
            CHECK(counterOf(std::string(buf, len)) == -2);
        }
    }

    TEST_CASE("possync_require: a failed condition on the master is EREJECTED from possync_wait") {
        Till t;
        {
            auto w = t.master->beginWrite();
            REQUIRE_OK(w->put("stock", Bytes("last"), Bytes("1")));
            REQUIRE_OK(w->commit());
        }
        t.roundTrip();
        uint64_t claim = 0, valueClaim = 0;
        {
            Handle h(t.ds.path());
            possync_txn* txn = nullptr;
            REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
            CHECK(possync_require(txn, "stock", "last", 4, POSSYNC_REQUIRE_ABSENT, nullptr, 0) == POSSYNC_OK);
            CHECK(possync_put(txn, "orders", "claim", 5, "me", 2) == POSSYNC_OK);
            CHECK(possync_commit_request(txn, &claim) == POSSYNC_OK);
            REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
            CHECK(possync_require(txn, "stock", "last", 4, POSSYNC_REQUIRE_VALUE, "1", 1) == POSSYNC_OK);
            CHECK(possync_require(txn, "stock", "last", 4, POSSYNC_REQUIRE_PRESENT, nullptr, 0) ==
                  POSSYNC_OK);
            CHECK(possync_del(txn, "stock", "last", 4) == POSSYNC_OK);
            CHECK(possync_commit_request(txn, &valueClaim) == POSSYNC_OK);
            // A bad kind poisons the transaction (nothing queued).
            REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
            CHECK(possync_require(txn, "stock", "last", 4, 7, nullptr, 0) == POSSYNC_EINVAL);
            uint64_t r = 0;
            CHECK(possync_commit_request(txn, &r) == POSSYNC_EINVAL);
        }
        CHECK(t.slaveStore()->outboxInfo()->count == 2);
        t.roundTrip();
        Handle h(t.ds.path());
        uint64_t seq = 0;
        CHECK(possync_wait(h.db, claim, 0, &seq) == POSSYNC_EREJECTED);
        CHECK(h.error().find("stock") != std::string::npos);
        CHECK(h.error().find("last") != std::string::npos);
        CHECK(possync_wait(h.db, valueClaim, 0, &seq) == POSSYNC_OK);
        char buf[8];
        size_t len = 0;
        CHECK(possync_get(h.db, "orders", "claim", 5, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);
        CHECK(possync_get(h.db, "stock", "last", 4, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);
    }

    TEST_CASE("possync_require and possync_add on the master decide at once") {
        TempDir d;
        Handle h(d.path());
        possync_txn* txn = nullptr;
        REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
        CHECK(possync_add(txn, "stock", "cola", 4, 10) == POSSYNC_OK);
        CHECK(possync_add(txn, "stock", "cola", 4, -3) == POSSYNC_OK);
        CHECK(possync_put(txn, "stock", "text", 4, "abc", 3) == POSSYNC_OK);
        uint64_t r = 9;
        CHECK(possync_commit_request(txn, &r) == POSSYNC_OK);
        CHECK(r == 0);  // the master applies at once: no request
        char buf[8];
        size_t len = 0;
        CHECK(possync_get(h.db, "stock", "cola", 4, buf, sizeof buf, &len) == POSSYNC_OK);
        CHECK(counterOf(std::string(buf, len)) == 7);

        REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
        CHECK(possync_put(txn, "orders", "o1", 2, "x", 1) == POSSYNC_OK);
        CHECK(possync_require(txn, "stock", "cola", 4, POSSYNC_REQUIRE_ABSENT, nullptr, 0) ==
              POSSYNC_EREJECTED);
        CHECK(h.error().find("cola") != std::string::npos);
        CHECK(possync_put(txn, "orders", "o2", 2, "x", 1) == POSSYNC_EREJECTED);  // poisoned
        CHECK(possync_commit(txn, nullptr) == POSSYNC_EREJECTED);
        CHECK(possync_get(h.db, "orders", "o1", 2, buf, sizeof buf, &len) == POSSYNC_ENOTFOUND);

        REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
        CHECK(possync_add(txn, "stock", "text", 4, 1) != POSSYNC_OK);  // not an 8-byte counter
        CHECK(possync_commit(txn, nullptr) != POSSYNC_OK);
        CHECK(possync_get(h.db, "stock", "text", 4, buf, sizeof buf, &len) == POSSYNC_OK);
        CHECK(std::string(buf, len) == "abc");

        // possync_wait on a master: request 0 is OK at once.
        uint64_t seq = 0;
        CHECK(possync_wait(h.db, 0, 0, &seq) == POSSYNC_OK);
    }

    TEST_CASE("a full outbox is EFULL and queues nothing; a never-synced slave is EREFUSED") {
        Till t;
        REQUIRE_OK(t.slaveStore()->setOutboxMaxBytes(600));
        std::string value(250, 'v');
        int queued = 0, rc = POSSYNC_OK;
        {
            Handle h(t.ds.path());
            for (int i = 0; i < 10 && rc == POSSYNC_OK; ++i) {
                possync_txn* txn = nullptr;
                REQUIRE(possync_begin(h.db, &txn) == POSSYNC_OK);
                std::string key = "o" + std::to_string(i);
                CHECK(possync_put(txn, "orders", key.data(), key.size(), value.data(), value.size()) ==
                      POSSYNC_OK);
                uint64_t r = 0;
                rc = possync_commit_request(txn, &r);
                if (rc == POSSYNC_OK) ++queued;
            }
            CHECK(rc == POSSYNC_EFULL);
            CHECK(h.error().find("outbox") != std::string::npos);
        }
        CHECK(queued >= 1);
        CHECK(t.slaveStore()->outboxInfo()->count == uint64_t(queued));

        TempDir fresh;
        {
            auto s = openStore(fresh.path());
            REQUIRE_OK(s->setRole(store::Role::Slave));
        }
        Handle h(fresh.path());
        possync_txn* txn = nullptr;
        CHECK(possync_begin(h.db, &txn) == POSSYNC_EREFUSED);
        CHECK(txn == nullptr);
        CHECK(h.error().find("not synced") != std::string::npos);
    }

    TEST_CASE("possync_begin on a slave taking a FULL is EBUSY at once") {
        Till t;
        auto s = t.slaveStore();
        auto a = s->beginApply();
        REQUIRE_OK(a);
        REQUIRE_OK(a->beginFull(kShared));
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        std::string dir = t.ds.path();
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            possync_db* db = nullptr;
            char code = 'o';
            if (possync_open(dir.c_str(), &db) == POSSYNC_OK) {
                possync_txn* txn = nullptr;
                int rc = possync_begin(db, &txn);
                code = rc == POSSYNC_EBUSY ? 'B' : rc == POSSYNC_OK ? 'k' : 'e';
            }
            (void)!write(fds[1], &code, 1);
            _exit(0);
        }
        close(fds[1]);
        pollfd p{fds[0], POLLIN, 0};
        int ready = poll(&p, 1, 30000);  // bounded: a blocked writer would hang here
        char code = 0;
        if (ready > 0) (void)!read(fds[0], &code, 1);
        if (ready <= 0) kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        close(fds[0]);
        CHECK_MESSAGE(ready > 0, "possync_begin blocked behind the FULL sync");
        CHECK(code == 'B');
        a->abort();
    }

}  // TEST_SUITE

TEST_CASE("possync_begin on a fenced board: POSSYNC_EREFUSED naming the reason") {
    TempDir d;
    {
        auto s = openStore(d.path());
        REQUIRE_OK(s->setWatchedTables({"orders"}));
        REQUIRE_OK(s->fence("store s1 has a newer master (till2, term 2)"));
    }
    possync_db* db = nullptr;
    REQUIRE(possync_open(d.path().c_str(), &db) == POSSYNC_OK);
    possync_txn* t = nullptr;
    CHECK(possync_begin(db, &t) == POSSYNC_EREFUSED);
    CHECK(t == nullptr);
    CHECK(std::string(possync_last_error(db)).find("till2, term 2") != std::string::npos);
    possync_close(db);
}
