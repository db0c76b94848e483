// Slave writes (DESIGN.md §9) at the store layer, with no daemon: a "master" and a "slave"
// directory, and the test plays the daemon by hand. It reads the slave's outbox, verifies each
// frame, has the master apply it (Store::applyRequest) and replicates the master's new log
// entries back to the slave (ApplyTxn). What must hold: a watched write on a slave is a request
// and nothing else; the master applies it exactly once (resends, reopen); conditions and ADD are
// decided on the master; malformed requests touch nothing; the outbox is bounded; the results
// window is bounded.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "requests_boards.h"

using namespace possync;
using namespace possync::test;
using store::RequestState;
using store::Require;

TEST_SUITE("store.requests") {
    TEST_CASE("a slave's watched write is queued as a request, its local write applies at once") {
        Boards b;
        store::Store& s = b.slave();
        auto c1 = write(s, [](store::WriteTxn& w) {
            CHECK(w.forwarding());
            REQUIRE_OK(w.put("orders", Bytes("o1"), Bytes("burger")));
        });
        CHECK(c1.request == 1);
        CHECK(c1.seq == 0);
        CHECK_FALSE(get(s, "orders", "o1"));  // not applied here: the master decides
        auto info = s.outboxInfo();
        REQUIRE_OK(info);
        CHECK(info->count == 1);
        auto queued = b.outbox();
        REQUIRE(queued.size() == 1);
        CHECK(info->bytes == queued[0].second.size());
        CHECK(info->oldestId == 1);
        CHECK(info->nextRequest == 2);
        CHECK(s.requestState(1)->kind == RequestState::Pending);

        // Unwatched table: local, at once, no request.
        auto c2 = write(s, [](store::WriteTxn& w) { REQUIRE_OK(w.put("drafts", Bytes("d1"), Bytes("x"))); });
        CHECK(c2.request == 0);
        CHECK(get(s, "drafts", "d1") == "x");
        CHECK(s.outboxInfo()->count == 1);

        // Mixed: both in one transaction.
        auto c3 = write(s, [](store::WriteTxn& w) {
            REQUIRE_OK(w.put("drafts", Bytes("d2"), Bytes("y")));
            REQUIRE_OK(w.put("orders", Bytes("o2"), Bytes("fries")));
            REQUIRE_OK(w.add("stock", Bytes("cola"), -1));
        });
        CHECK(c3.request == 2);
        CHECK(get(s, "drafts", "d2") == "y");
        CHECK_FALSE(get(s, "orders", "o2"));
        CHECK(s.outboxInfo()->count == 2);

        // ... and atomically: an aborted mixed transaction leaves neither.
        {
            auto w = s.beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->put("drafts", Bytes("d3"), Bytes("z")));
            REQUIRE_OK(w->put("orders", Bytes("o3"), Bytes("tea")));
            w->abort();
        }
        CHECK_FALSE(get(s, "drafts", "d3"));
        CHECK(s.outboxInfo()->count == 2);
        CHECK(s.outboxInfo()->nextRequest == 3);
        // ... and a failure in the local part queues nothing either.
        {
            auto w = s.beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->put("orders", Bytes("o4"), Bytes("tea")));
            REQUIRE_OK(w->put("drafts", Bytes("n"), Bytes("12345")));
            CHECK_FALSE(w->add("drafts", Bytes("n"), 1).ok());  // not an 8-byte counter: poisons
            CHECK_FALSE(w->commitWrite().ok());
        }
        CHECK(s.outboxInfo()->count == 2);
        CHECK_FALSE(get(s, "drafts", "n"));
        // A transaction with nothing in it queues nothing and takes no id.
        CHECK(write(s, [](store::WriteTxn&) {}).request == 0);
        CHECK(s.outboxInfo()->nextRequest == 3);

        // A request's frame says who, which id and which generation.
        queued = b.outbox();
        REQUIRE(queued.size() == 2);
        auto f = wire::verifyFrame(Bytes(queued[1].second));
        REQUIRE_OK(f);
        const wire::WriteRequest* req = wire::asWriteRequest(*f);
        REQUIRE(req != nullptr);
        CHECK(wire::textOf(req->device_id()) == "till1");
        CHECK(req->request_id() == 2);
        CHECK(req->generation() == b.master->meta()->generation);
        REQUIRE(req->changes() != nullptr);
        CHECK(req->changes()->size() == 2);  // the local put is not in it
    }

    TEST_CASE("request ids grow and are never reused, also across a reopen and a drained outbox") {
        Boards b;
        for (int i = 1; i <= 3; ++i) {
            auto c = write(b.slave(), [&](store::WriteTxn& w) {
                REQUIRE_OK(w.put("orders", Bytes("o" + std::to_string(i)), Bytes("x")));
            });
            CHECK(c.request == uint64_t(i));
        }
        b.forward();
        b.replicate();
        CHECK(b.slave().outboxInfo()->count == 0);
        std::string dir = b.slaveDir();
        b.slaves[0].reset();
        b.slaves[0] = openStore(dir);
        auto c = write(b.slave(),
                       [](store::WriteTxn& w) { REQUIRE_OK(w.put("orders", Bytes("o4"), Bytes("x"))); });
        CHECK(c.request == 4);
        b.forward();
        b.replicate();
        CHECK(get(b.slave(), "orders", "o4") == "x");
        CHECK(clientOf(*b.master, "till1").lastRequest == 4);
    }

    TEST_CASE("the master applies a request; its log entry settles the slave's outbox in the same apply") {
        Boards b;
        store::Store& s = b.slave();
        auto c = write(s, [](store::WriteTxn& w) {
            REQUIRE_OK(w.put("orders", Bytes("o1"), Bytes("burger")));
            REQUIRE_OK(w.add("stock", Bytes("cola"), 5));
        });
        REQUIRE(c.request == 1);
        uint64_t headBefore = b.master->meta()->seq;
        auto outcomes = b.forward();
        REQUIRE(outcomes.size() == 1);
        const auto& o = outcomes[0];
        CHECK_FALSE(o.duplicate);
        CHECK_FALSE(o.result.rejected);
        CHECK(o.result.requestId == 1);
        CHECK(o.result.seq == headBefore + 1);
        CHECK(b.master->meta()->seq == headBefore + 1);
        CHECK(get(*b.master, "orders", "o1") == "burger");
        CHECK(counterOf(get(*b.master, "stock", "cola")) == 5);
        // Not yet on the slave: the outbox still holds it, until the change comes back.
        CHECK_FALSE(get(s, "orders", "o1"));
        CHECK(s.requestState(1)->kind == RequestState::Pending);
        CHECK(s.outboxInfo()->count == 1);

        // The log entry carries the origin.
        bool sawOrigin = false;
        auto logged = b.master->readLog(o.result.seq, 1, SIZE_MAX, [&](uint64_t, Bytes f) {
            auto v = wire::verifyFrame(f);
            REQUIRE(v.ok());
            const wire::ChangeModel* cm = wire::asChangeModel(*v);
            REQUIRE(cm != nullptr);
            REQUIRE(cm->origin() != nullptr);
            CHECK(wire::textOf(cm->origin()->device_id()) == "till1");
            CHECK(cm->origin()->request_id() == 1);
            CHECK(cm->origin()->status() == wire::WriteStatus::COMMITTED);
            REQUIRE(cm->changes() != nullptr);
            CHECK(cm->changes()->size() == 2);
            sawOrigin = true;
            return true;
        });
        REQUIRE_OK(logged);
        CHECK(sawOrigin);

        // One apply: the data and the outbox removal together.
        {
            uint64_t from = s.meta()->seq + 1;
            std::string frame;
            REQUIRE_OK(b.master->readLog(from, 1, SIZE_MAX, [&](uint64_t, Bytes f) {
                frame = f.str();
                return false;
            }));
            auto a = s.beginApply();
            REQUIRE_OK(a);
            REQUIRE_OK(a->apply(wire::asChangeModel(*wire::verifyFrame(Bytes(frame)))));
            REQUIRE_OK(a->setPosition(b.master->meta()->generation, o.result.seq));
            CHECK(a->ownSettled() == std::vector<uint64_t>{1});
            // Before the commit, readers see neither the data nor the outbox change.
            CHECK_FALSE(get(s, "orders", "o1"));
            CHECK(s.outboxInfo()->count == 1);
            REQUIRE_OK(a->commit());
        }
        CHECK(get(s, "orders", "o1") == "burger");
        CHECK(counterOf(get(s, "stock", "cola")) == 5);
        auto info = s.outboxInfo();
        REQUIRE_OK(info);
        CHECK(info->count == 0);
        CHECK(info->bytes == 0);
        CHECK(info->oldestId == 0);
        CHECK(b.outbox().empty());
        auto st = s.requestState(1);
        REQUIRE_OK(st);
        CHECK(st->kind == RequestState::Committed);
        CHECK(st->seq == o.result.seq);

        // possync.clients: the same record on both boards.
        auto mc = clientOf(*b.master, "till1");
        auto sc = clientOf(s, "till1");
        CHECK(mc.lastRequest == 1);
        CHECK(mc.lastSeq == o.result.seq);
        CHECK(mc.applied == 1);
        CHECK(mc.rejected == 0);
        CHECK(sc.lastRequest == mc.lastRequest);
        CHECK(sc.lastSeq == mc.lastSeq);
        CHECK(sc.applied == mc.applied);
        CHECK(sc.rejected == mc.rejected);
        CHECK(*s.beginRead()->watchedDigest() == *b.master->beginRead()->watchedDigest());
    }

    TEST_CASE("a log entry applied twice on a slave (a replay) does not count the request twice") {
        Boards b;
        write(b.slave(), [](store::WriteTxn& w) { REQUIRE_OK(w.put("orders", Bytes("o1"), Bytes("x"))); });
        b.forward();
        b.replicate();
        uint64_t seq = b.master->meta()->seq;
        // Replayed (PUT/DEL/CLEAR are idempotent; a FULL followed by a log replay relies on that).
        std::string frame;
        REQUIRE_OK(b.master->readLog(seq, 1, SIZE_MAX, [&](uint64_t, Bytes f) {
            frame = f.str();
            return false;
        }));
        auto a = b.slave().beginApply();
        REQUIRE_OK(a);
        REQUIRE_OK(a->apply(wire::asChangeModel(*wire::verifyFrame(Bytes(frame)))));
        REQUIRE_OK(a->setPosition(b.master->meta()->generation, seq));
        REQUIRE_OK(a->commit());
        auto mc = clientOf(*b.master, "till1");
        auto sc = clientOf(b.slave(), "till1");
        CHECK(sc.applied == mc.applied);
        CHECK(sc.rejected == mc.rejected);
        CHECK(sc.lastRequest == mc.lastRequest);
        CHECK(b.slave().requestState(1)->kind == RequestState::Committed);
    }

    TEST_CASE("exactly once: a resent request gets its stored outcome, also after the master reopens") {
        Boards b;
        write(b.slave(), [](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("cola"), 3)); });
        write(b.slave(), [](store::WriteTxn& w) {
            REQUIRE_OK(w.require("orders", Bytes("o1"), Require::Present));
            REQUIRE_OK(w.add("stock", Bytes("cola"), 100));
        });
        auto queued = b.outbox();
        REQUIRE(queued.size() == 2);
        auto first = b.forward();
        REQUIRE(first.size() == 2);
        CHECK_FALSE(first[0].result.rejected);
        CHECK(first[1].result.rejected);
        uint64_t head = b.master->meta()->seq;
        auto checkResends = [&](store::Store& m) {
            for (size_t i = 0; i < queued.size(); ++i) {
                auto f = wire::verifyFrame(Bytes(queued[i].second));
                REQUIRE_OK(f);
                auto again = m.applyRequest(wire::asWriteRequest(*f));
                REQUIRE_OK(again);
                CHECK(again->duplicate);
                CHECK(again->result.requestId == first[i].result.requestId);
                CHECK(again->result.rejected == first[i].result.rejected);
                CHECK(again->result.seq == first[i].result.seq);
                CHECK(again->result.reason == first[i].result.reason);
            }
            CHECK(m.meta()->seq == head);
            CHECK(m.logInfo()->last == head);
            CHECK(counterOf(get(m, "stock", "cola")) == 3);
            auto c = clientOf(m, "till1");
            CHECK(c.applied == 1);
            CHECK(c.rejected == 1);
            CHECK(c.lastRequest == 2);
        };
        checkResends(*b.master);
        // The master crashed between its commit and sending the result: after a restart the slave
        // resends, and the stored outcome comes back again.
        b.master.reset();
        store::StoreOptions mo;
        mo.deviceId = "master";
        b.master = openStore(b.dm.path(), mo);
        checkResends(*b.master);
        b.replicate();
        CHECK(b.slave().outboxInfo()->count == 0);
        CHECK(counterOf(get(b.slave(), "stock", "cola")) == 3);
    }

}  // TEST_SUITE
