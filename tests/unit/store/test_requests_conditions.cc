// Slave writes (DESIGN.md §9) at the store layer, part 2 (part 1: test_requests.cc, same boards,
// requests_boards.h): conditions and ADD decided on the master, rejection reasons, malformed
// requests that touch nothing, the slave's refusals, the bounded outbox and results window.
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
    TEST_CASE("conditions: absent, present and value hash pass and fail on the master") {
        Boards b;
        store::Store& s = b.slave();
        // Seed the master with a key, and replicate it.
        write(*b.master,
              [](store::WriteTxn& w) { REQUIRE_OK(w.put("stock", Bytes("last"), Bytes("1 left"))); });
        b.replicate();
        uint64_t goodHash = store::valueHash(Bytes("1 left"));
        struct Case {
            const char* name;
            Require what;
            const char* key;
            uint64_t hash;
            bool passes;
            const char* says;
        };
        const Case cases[] = {
            {"absent holds", Require::Absent, "nope", 0, true, ""},
            {"absent fails", Require::Absent, "last", 0, false, "exists"},
            {"present holds", Require::Present, "last", 0, true, ""},
            {"present fails", Require::Present, "nope", 0, false, "is absent"},
            {"hash holds", Require::ValueHash, "last", goodHash, true, ""},
            {"hash differs", Require::ValueHash, "last", goodHash ^ 1, false, "another value"},
            {"hash on absent", Require::ValueHash, "nope", goodHash, false, "is absent"},
        };
        int n = 0;
        for (const Case& c : cases) {
            CAPTURE(c.name);
            std::string order = "o" + std::to_string(++n);
            auto ci = write(s, [&](store::WriteTxn& w) {
                REQUIRE_OK(w.require("stock", Bytes(c.key), c.what, c.hash));
                REQUIRE_OK(w.put("orders", Bytes(order), Bytes("claim")));
            });
            uint64_t head = b.master->meta()->seq;
            auto out = b.forward();
            REQUIRE(out.size() == 1);
            CHECK(out[0].result.requestId == ci.request);
            CHECK(out[0].result.rejected == !c.passes);
            // Logged either way (every board learns the outcome in order).
            CHECK(out[0].result.seq == head + 1);
            CHECK(get(*b.master, "orders", order).has_value() == c.passes);
            if (!c.passes) {
                const std::string& why = out[0].result.reason;
                CHECK(why.find("stock") != std::string::npos);
                CHECK(why.find(c.key) != std::string::npos);
                CHECK(why.find(c.says) != std::string::npos);
                // The entry holds no changes and a REJECTED origin.
                auto logged = b.master->readLog(head + 1, 1, SIZE_MAX, [&](uint64_t, Bytes f) {
                    const wire::ChangeModel* cm = wire::asChangeModel(*wire::verifyFrame(f));
                    REQUIRE(cm != nullptr);
                    CHECK((!cm->changes() || cm->changes()->size() == 0));
                    REQUIRE(cm->origin() != nullptr);
                    CHECK(cm->origin()->status() == wire::WriteStatus::REJECTED);
                    CHECK(wire::textOf(cm->origin()->reason()) == why);
                    return false;
                });
                REQUIRE_OK(logged);
            }
            b.replicate();
            CHECK(get(s, "orders", order).has_value() == c.passes);
            auto st = s.requestState(ci.request);
            REQUIRE_OK(st);
            CHECK(st->kind == (c.passes ? RequestState::Committed : RequestState::Rejected));
            CHECK(st->seq == head + 1);
            if (!c.passes) {
                CHECK(st->reason == out[0].result.reason);
                auto info = s.outboxInfo();
                CHECK(info->lastRejection.find(out[0].result.reason) != std::string::npos);
                CHECK(info->lastRejection.find("request " + std::to_string(ci.request)) != std::string::npos);
            }
            CHECK(s.outboxInfo()->count == 0);
        }
        auto mc = clientOf(*b.master, "till1");
        CHECK(mc.applied == 3);
        CHECK(mc.rejected == 4);
        auto sc = clientOf(s, "till1");
        CHECK(sc.applied == 3);
        CHECK(sc.rejected == 4);
        CHECK(*s.beginRead()->watchedDigest() == *b.master->beginRead()->watchedDigest());
    }

    TEST_CASE("a rejection reason is the same on the master, in the log and on the slave, even when long") {
        // A table name near its 255-byte limit makes the reason longer than a wire reason may be.
        const std::string table(240, 't');
        Boards b(1, {"orders", table});
        write(*b.master, [&](store::WriteTxn& w) { REQUIRE_OK(w.put(table, Bytes("k"), Bytes("v"))); });
        b.replicate();
        write(b.slave(),
              [&](store::WriteTxn& w) { REQUIRE_OK(w.require(table, Bytes("k"), Require::Absent)); });
        auto queued = b.outbox();
        REQUIRE(queued.size() == 1);
        auto out = b.forward();
        REQUIRE(out.size() == 1);
        REQUIRE(out[0].result.rejected);
        CHECK(out[0].result.reason.size() <= wire::kMaxReasonBytes);
        b.replicate();
        auto st = b.slave().requestState(1);
        REQUIRE_OK(st);
        CHECK(st->kind == RequestState::Rejected);
        CHECK(st->reason == out[0].result.reason);
        // The resend gets the same text as the first answer.
        auto again =
            b.master->applyRequest(wire::asWriteRequest(*wire::verifyFrame(Bytes(queued[0].second))));
        REQUIRE_OK(again);
        CHECK(again->duplicate);
        CHECK(again->result.reason == out[0].result.reason);
    }

    TEST_CASE("ADD: concurrent deltas from two slaves and the master add up; bad ADDs reject") {
        Boards b(2);
        write(*b.master,
              [](store::WriteTxn& w) { REQUIRE_OK(w.put("stock", Bytes("cola"), Bytes(counter(10)))); });
        b.replicateAll();
        // Each board writes before seeing the others' writes.
        write(b.slave(0), [](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("cola"), -3)); });
        write(b.slave(1), [](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("cola"), -4)); });
        write(b.slave(0), [](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("cola"), -1)); });
        write(*b.master, [](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("cola"), 20)); });
        for (const auto& o : b.forward(0)) CHECK_FALSE(o.result.rejected);
        for (const auto& o : b.forward(1)) CHECK_FALSE(o.result.rejected);
        b.replicateAll();
        CHECK(counterOf(get(*b.master, "stock", "cola")) == 10 - 3 - 4 - 1 + 20);
        CHECK(counterOf(get(b.slave(0), "stock", "cola")) == 22);
        CHECK(counterOf(get(b.slave(1), "stock", "cola")) == 22);
        // ADD on an absent key starts from 0.
        write(b.slave(1), [](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("fresh"), -2)); });
        b.forward(1);
        b.replicateAll();
        CHECK(counterOf(get(b.slave(0), "stock", "fresh")) == -2);

        // ADD on a value that is not 8 bytes: rejected, naming table and key; nothing applied.
        write(*b.master, [](store::WriteTxn& w) { REQUIRE_OK(w.put("stock", Bytes("text"), Bytes("abc"))); });
        b.replicateAll();
        auto c = write(b.slave(0), [](store::WriteTxn& w) {
            REQUIRE_OK(w.put("orders", Bytes("with-bad-add"), Bytes("x")));
            REQUIRE_OK(w.add("stock", Bytes("text"), 1));
        });
        auto out = b.forward(0);
        REQUIRE(out.size() == 1);
        CHECK(out[0].result.rejected);
        CHECK(out[0].result.reason.find("stock") != std::string::npos);
        CHECK(out[0].result.reason.find("text") != std::string::npos);
        CHECK_FALSE(get(*b.master, "orders", "with-bad-add"));
        CHECK(get(*b.master, "stock", "text") == "abc");
        // Overflow: rejected, the counter unchanged.
        write(*b.master, [](store::WriteTxn& w) {
            REQUIRE_OK(w.put("stock", Bytes("big"), Bytes(counter(INT64_MAX - 1))));
        });
        b.replicateAll();
        write(b.slave(1), [](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("big"), 2)); });
        out = b.forward(1);
        REQUIRE(out.size() == 1);
        CHECK(out[0].result.rejected);
        CHECK(out[0].result.reason.find("overflow") != std::string::npos);
        CHECK(counterOf(get(*b.master, "stock", "big")) == INT64_MAX - 1);
        b.replicateAll();
        CHECK(b.slave(0).requestState(c.request)->kind == RequestState::Rejected);
        CHECK(b.slave(0).outboxInfo()->count == 0);
        CHECK(b.slave(1).outboxInfo()->count == 0);
        CHECK(*b.slave(0).beginRead()->watchedDigest() == *b.master->beginRead()->watchedDigest());
        CHECK(*b.slave(1).beginRead()->watchedDigest() == *b.master->beginRead()->watchedDigest());
    }

    TEST_CASE("the master's own require() and add() decide at once; a failed one commits nothing") {
        Boards b(0);
        store::Store& m = *b.master;
        write(m, [](store::WriteTxn& w) {
            REQUIRE_OK(w.require("stock", Bytes("last"), Require::Absent));
            REQUIRE_OK(w.put("stock", Bytes("last"), Bytes("claimed-by-master")));
            REQUIRE_OK(w.add("stock", Bytes("cola"), 7));
            REQUIRE_OK(w.add("stock", Bytes("cola"), -2));
            // The transaction's own view: the sum so far.
            auto v = w.get("stock", Bytes("cola"));
            REQUIRE_OK(v);
            REQUIRE(v->has_value());
            CHECK(counterOf(std::optional<std::string>((*v)->str())) == 5);
        });
        CHECK(counterOf(get(m, "stock", "cola")) == 5);
        uint64_t head = m.meta()->seq;
        {
            auto w = m.beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->put("orders", Bytes("second-claim"), Bytes("x")));
            REQUIRE_OK(w->add("stock", Bytes("cola"), -1));
            auto r = w->require("stock", Bytes("last"), Require::Absent);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code == Errc::Rejected);
            CHECK(r.error().message.find("stock") != std::string::npos);
            CHECK(r.error().message.find("last") != std::string::npos);
            // Poisoned: later writes and the commit return the same error.
            auto p = w->put("orders", Bytes("later"), Bytes("x"));
            REQUIRE_FALSE(p.ok());
            CHECK(p.error().code == Errc::Rejected);
            auto c = w->commit();
            REQUIRE_FALSE(c.ok());
            CHECK(c.error().code == Errc::Rejected);
        }
        CHECK(m.meta()->seq == head);
        CHECK_FALSE(get(m, "orders", "second-claim"));
        CHECK(counterOf(get(m, "stock", "cola")) == 5);
        // Hash and present conditions hold on the master too.
        write(m, [](store::WriteTxn& w) {
            REQUIRE_OK(w.require("stock", Bytes("last"), Require::Present));
            REQUIRE_OK(w.require("stock", Bytes("last"), Require::ValueHash,
                                 store::valueHash(Bytes("claimed-by-master"))));
            REQUIRE_OK(w.del("stock", Bytes("last")));
        });
        CHECK_FALSE(get(m, "stock", "last"));
        // ADD overflow and a non-counter value fail the master's transaction.
        {
            auto w = m.beginWrite();
            REQUIRE_OK(w->put("stock", Bytes("max"), Bytes(counter(INT64_MAX))));
            CHECK_FALSE(w->add("stock", Bytes("max"), 1).ok());
            CHECK_FALSE(w->commit().ok());
        }
        CHECK_FALSE(get(m, "stock", "max"));
    }

    TEST_CASE("malformed requests are rejected with seq 0 and touch nothing") {
        Boards b;
        store::Store& m = *b.master;
        write(m, [](store::WriteTxn& w) { REQUIRE_OK(w.put("orders", Bytes("keep"), Bytes("1"))); });
        REQUIRE_OK(m.setWatchedTables({"orders", "stock"}));
        uint64_t gen = m.meta()->generation;
        uint64_t head = m.meta()->seq;
        uint64_t digest = *m.beginRead()->watchedDigest();
        auto untouched = [&]() {
            CHECK(m.meta()->seq == head);
            CHECK(m.logInfo()->last == head);
            CHECK(*m.beginRead()->watchedDigest() == digest);
            CHECK(get(m, "orders", "keep") == "1");
            CHECK(entries(m, "orders") == 1);
            CHECK(entries(m, "local") == 0);
            auto meta = m.meta();
            REQUIRE_OK(meta);
            CHECK(meta->generation == gen);
        };
        struct Case {
            const char* name;
            std::function<void(wire::RequestWriter&)> build;
            uint64_t generation;
            const char* device;
            const char* says;
        };
        std::vector<Case> cases = {
            {"reserved table",
             [](wire::RequestWriter& w) {
                 w.change("orders", wire::Op::PUT, Bytes("a"), Bytes("1"));
                 w.change("possync.meta", wire::Op::PUT, Bytes("seq"), Bytes("evil"));
             },
             gen, "rogue", "reserved"},
            {"unwatched table",
             [](wire::RequestWriter& w) { w.change("local", wire::Op::PUT, Bytes("a"), Bytes("1")); }, gen,
             "rogue", "local"},
            {"empty key",
             [](wire::RequestWriter& w) { w.change("orders", wire::Op::PUT, Bytes(), Bytes("1")); }, gen,
             "rogue", "empty key"},
            {"condition on an unknown table",
             [](wire::RequestWriter& w) {
                 w.condition("nosuch", Bytes("k"), wire::Require::ABSENT, 0);
                 w.change("orders", wire::Op::PUT, Bytes("a"), Bytes("1"));
             },
             gen, "rogue", "nosuch"},
            {"condition on a reserved table",
             [](wire::RequestWriter& w) {
                 w.condition("possync.clients", Bytes("k"), wire::Require::ABSENT, 0);
                 w.change("orders", wire::Op::PUT, Bytes("a"), Bytes("1"));
             },
             gen, "rogue", "reserved"},
            {"ADD without an 8-byte delta",
             [](wire::RequestWriter& w) { w.change("stock", wire::Op::ADD, Bytes("c"), Bytes("123")); }, gen,
             "rogue", "8-byte"},
            {"another generation",
             [](wire::RequestWriter& w) { w.change("orders", wire::Op::PUT, Bytes("a"), Bytes("1")); },
             gen + 1, "rogue", "generation"},
            {"no device id",
             [](wire::RequestWriter& w) { w.change("orders", wire::Op::PUT, Bytes("a"), Bytes("1")); }, gen,
             "", "device"},
        };
        uint64_t id = 0;
        for (auto& c : cases) {
            CAPTURE(c.name);
            Forged f;
            c.build(f.writer);
            auto req = f.finish(c.device, ++id, c.generation);
            auto o = m.applyRequest(req);
            REQUIRE_OK(o);
            CHECK(o->result.rejected);
            CHECK(o->result.seq == 0);
            CHECK(o->result.requestId == id);
            CHECK_FALSE(o->duplicate);
            CHECK_MESSAGE(o->result.reason.find(c.says) != std::string::npos, o->result.reason);
            untouched();
        }
        {
            Forged f;
            f.writer.change("orders", wire::Op::PUT, Bytes("a"), Bytes("1"));
            auto o = m.applyRequest(f.finish("rogue", 0, gen));
            REQUIRE_OK(o);
            CHECK(o->result.rejected);
            CHECK(o->result.seq == 0);
            untouched();
        }
        // Nothing was recorded for the rogue device either.
        auto all = m.clients();
        REQUIRE_OK(all);
        for (auto& c : *all) CHECK(c.device != "rogue");
        CHECK(resultsOf(m, "rogue") == 0);

        // A slave settles such a rejection without a log entry: its request leaves the outbox and
        // requestState says why.
        write(b.slave(), [](store::WriteTxn& w) { REQUIRE_OK(w.put("orders", Bytes("x"), Bytes("1"))); });
        REQUIRE_OK(m.setWatchedTables({"stock"}));  // now the slave's request names an unwatched table
        auto out = b.forward();
        REQUIRE(out.size() == 1);
        CHECK(out[0].result.rejected);
        CHECK(out[0].result.seq == 0);
        CHECK(b.slave().outboxInfo()->count == 0);
        auto st = b.slave().requestState(1);
        REQUIRE_OK(st);
        CHECK(st->kind == RequestState::Rejected);
        CHECK(st->reason == out[0].result.reason);
        CHECK(b.slave().outboxInfo()->lastRejection.find(out[0].result.reason) != std::string::npos);
    }

    TEST_CASE("a slave refuses to apply requests; the master refuses nothing it should not") {
        Boards b;
        Forged f;
        f.writer.change("orders", wire::Op::PUT, Bytes("a"), Bytes("1"));
        auto o = b.slave().applyRequest(f.finish("till9", 1, b.master->meta()->generation));
        REQUIRE_FALSE(o.ok());
        CHECK(o.error().code == Errc::Refused);
        CHECK_FALSE(get(b.slave(), "orders", "a"));
    }

    TEST_CASE("the outbox is bounded: the write that would pass the bound fails with Full, queues nothing") {
        Boards b;
        store::Store& s = b.slave();
        CHECK(s.outboxInfo()->maxBytes == store::kDefaultOutboxMaxBytes);
        REQUIRE_OK(s.setOutboxMaxBytes(1000));
        CHECK(s.outboxInfo()->maxBytes == 1000);
        std::string value(300, 'v');
        int queued = 0;
        std::optional<Error> last;
        for (int i = 0; i < 10; ++i) {
            auto w = s.beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->put("orders", Bytes("o" + std::to_string(i)), Bytes(value)));
            REQUIRE_OK(w->put("local", Bytes("l" + std::to_string(i)), Bytes("x")));
            auto c = w->commitWrite();
            if (!c.ok()) {
                last = c.error();
                break;
            }
            ++queued;
        }
        REQUIRE(queued >= 1);
        REQUIRE(queued < 10);
        REQUIRE(last.has_value());
        CHECK(last->code == Errc::Full);
        CHECK(last->message.find("outbox") != std::string::npos);
        auto info = s.outboxInfo();
        CHECK(info->count == uint64_t(queued));
        CHECK(info->bytes <= 1000);
        CHECK(info->nextRequest == uint64_t(queued) + 1);  // the refused write took no id
        // ... nor applied its local part (one transaction).
        CHECK_FALSE(get(s, "local", "l" + std::to_string(queued)));
        CHECK(get(s, "local", "l0") == "x");
        // Draining makes room again.
        b.forward();
        b.replicate();
        CHECK(s.outboxInfo()->count == 0);
        auto c =
            write(s, [&](store::WriteTxn& w) { REQUIRE_OK(w.put("orders", Bytes("after"), Bytes(value))); });
        CHECK(c.request == uint64_t(queued) + 1);
    }

    TEST_CASE("a never-synced slave refuses writes") {
        TempDir d;
        auto s = openStore(d.path());
        REQUIRE_OK(s->setRole(store::Role::Slave));
        auto w = s->beginWrite();
        REQUIRE_FALSE(w.ok());
        CHECK(w.error().code == Errc::Refused);
        CHECK(s->outboxInfo()->count == 0);
    }

    TEST_CASE("a slave taking a FULL refuses another process's writes at once with Busy") {
        Boards b;
        auto a = b.slave().beginApply();
        REQUIRE_OK(a);
        REQUIRE_OK(a->beginFull(kShared));  // holds DIR/possync.full and LMDB's writer lock
        int fds[2];
        REQUIRE(pipe(fds) == 0);
        std::string dir = b.slaveDir();
        pid_t pid = fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            char code = 'x';
            auto s = store::Store::open(dir, {});
            if (!s)
                code = 'o';
            else {
                auto w = (*s)->beginWrite();  // must not wait for the FULL's writer lock
                code = w.ok() ? 'k' : w.error().code == Errc::Busy ? 'B' : 'e';
            }
            (void)!write(fds[1], &code, 1);
            _exit(0);
        }
        close(fds[1]);
        pollfd p{fds[0], POLLIN, 0};
        int ready = poll(&p, 1, 30000);  // bounded: a blocked writer would otherwise hang the test
        char code = 0;
        if (ready > 0) (void)!read(fds[0], &code, 1);
        if (ready <= 0) kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        close(fds[0]);
        CHECK_MESSAGE(ready > 0, "the writer blocked behind the FULL sync");
        CHECK(code == 'B');
        a->abort();
        // After the FULL, writes are accepted again (in this process too).
        auto w = b.slave().beginWrite();
        CHECK(w.ok());
    }

    TEST_CASE("the results window keeps the last 4096 outcomes per device") {
        Boards b;
        store::Store& s = b.slave();
        const uint64_t n = store::kResultsKeptPerDevice + 5;
        for (uint64_t i = 1; i <= n; ++i) {
            auto c = write(s, [&](store::WriteTxn& w) { REQUIRE_OK(w.add("stock", Bytes("cola"), 1)); });
            REQUIRE(c.request == i);
            if (i % 500 == 0 || i == n) {
                b.forward();
                b.replicate();
            }
        }
        CHECK(counterOf(get(*b.master, "stock", "cola")) == int64_t(n));
        CHECK(counterOf(get(s, "stock", "cola")) == int64_t(n));
        CHECK(resultsOf(*b.master, "till1") == store::kResultsKeptPerDevice);
        CHECK(resultsOf(s, "till1") == store::kResultsKeptPerDevice);
        auto oldest = s.requestState(1);
        REQUIRE_OK(oldest);
        CHECK(oldest->kind == RequestState::Unknown);
        CHECK(oldest->reason.find("no longer kept") != std::string::npos);
        auto pruned = s.requestState(n - store::kResultsKeptPerDevice);
        CHECK(pruned->kind == RequestState::Unknown);
        auto kept = s.requestState(n - store::kResultsKeptPerDevice + 1);
        CHECK(kept->kind == RequestState::Committed);
        auto newest = s.requestState(n);
        CHECK(newest->kind == RequestState::Committed);
        CHECK(newest->seq == b.master->meta()->seq);
        auto never = s.requestState(n + 1);
        CHECK(never->kind == RequestState::Unknown);
        CHECK(never->reason.find("ever queued") != std::string::npos);
        auto mc = clientOf(*b.master, "till1");
        CHECK(mc.applied == n);
        CHECK(mc.lastRequest == n);
        // A resend of a pruned id is still not applied twice.
        Forged f;
        f.writer.change("stock", wire::Op::ADD, Bytes("cola"), Bytes(counter(1)));
        auto o = b.master->applyRequest(f.finish("till1", 1, b.master->meta()->generation));
        REQUIRE_OK(o);
        CHECK(o->duplicate);
        CHECK(counterOf(get(*b.master, "stock", "cola")) == int64_t(n));
    }

}  // TEST_SUITE
