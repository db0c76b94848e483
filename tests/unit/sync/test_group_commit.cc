// Group commit through the real Master (sync/master.cc): two slaves' Replicas linked over TCP on
// 127.0.0.1 (one libuv loop, one thread), each with a backlog of queued requests, as after a
// partition. The master takes what queued while its worker was busy as one batch
// (Store::applyRequests). What must hold: every request gets its result, in each slave's id
// order, exactly once; the one "last item" both slaves claim goes to exactly one; all boards
// end with the same data; and the master committed fewer write transactions than it applied
// requests (the batches were real). Also with every batch failing Busy for a while (requeued).
#include <doctest/doctest.h>
#include <lmdb.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "uv/loop.h"
#include "uv/timer.h"

#include "fixture.h"

using namespace possync;
using namespace possync::test;

namespace {

const std::vector<std::string> kShared = {"orders", "stock"};
constexpr uint64_t kQueued = 100;  // per slave: three windows and a bit

std::string counter(int64_t v) {
    uint8_t be[8];
    store::encodeCounter(be, v);
    return std::string(reinterpret_cast<const char*>(be), 8);
}

uint64_t lastTxnId(store::Store& s) {
    MDB_envinfo info;
    REQUIRE(mdb_env_info(s.env().raw(), &info) == 0);
    return info.me_last_txnid;
}

// A slave directory synced to `master` by hand (a FULL of its data at its head), with kQueued
// requests in its outbox and, last, a claim on orders/last.
struct Till {
    TempDir dir;
    std::string device;
    std::unique_ptr<store::Store> store;
    TestLocator locator;
    std::unique_ptr<sync::Replica> replica;

    Till(store::Store& master, std::string id) : device(std::move(id)) {
        store::StoreOptions o;
        o.deviceId = device;
        store = openStore(dir.path(), o);
        REQUIRE_OK(store->setRole(store::Role::Slave));
        {
            auto m = master.meta();
            REQUIRE_OK(m);
            auto a = store->beginApply();
            REQUIRE_OK(a);
            REQUIRE_OK(a->beginFull(kShared));
            REQUIRE_OK(a->setPosition(m->generation, m->seq));
            REQUIRE_OK(a->commit());
        }
        for (uint64_t i = 1; i <= kQueued; ++i) {
            auto w = store->beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->add("stock", Bytes("cola"), -1));
            REQUIRE_OK(w->put("orders", Bytes(device + "-" + std::to_string(i)), Bytes("cola")));
            auto c = w->commitWrite();
            REQUIRE_OK(c);
            REQUIRE(c->request == i);
        }
        auto w = store->beginWrite();
        REQUIRE_OK(w);
        REQUIRE_OK(w->require("orders", Bytes("last"), store::Require::Absent));
        REQUIRE_OK(w->put("orders", Bytes("last"), Bytes(device)));
        REQUIRE(w->commitWrite()->request == kQueued + 1);
    }

    void start(uv::Loop& loop, uint16_t port) {
        locator.port = port;
        sync::ReplicaConfig rc;
        rc.storeId = "store1";
        rc.deviceId = device;
        rc.backoffMinMs = 20;
        rc.backoffMaxMs = 100;
        auto r = sync::Replica::create(loop, *store, locator, rc);
        REQUIRE_OK(r);
        replica = std::move(*r);
        replica->start();
    }
    bool drained(uint64_t masterSeq) {
        auto info = store->outboxInfo();
        auto m = store->meta();
        return info && m && info->count == 0 && m->seq == masterSeq;
    }
};

// Two slaves drain their backlog through the real Master; checks every outcome. `holdReader`:
// the loop thread holds a read transaction on the master's directory until both slaves have
// requests in flight and the worker had time for several tries: orders is new to the master's
// process, so every batch meanwhile fails with Busy (LMDB cannot open its handle beside another
// transaction of the process) and must be requeued whole, in order, and applied after.
void drainBoth(bool holdReader) {
    auto loop = uv::Loop::create();
    REQUIRE_OK(loop);
    TempDir md;
    store::StoreOptions mo;
    mo.deviceId = "master-dev";
    auto master = openStore(md.path(), mo);
    REQUIRE_OK(master->setWatchedTables(kShared));
    Till a(*master, "till1"), b(*master, "till2");
    // After the slaves' FULL (of no data): it reaches them INCREMENTAL, before their requests.
    {
        auto w = master->beginWrite();
        REQUIRE_OK(w);
        REQUIRE_OK(w->put("stock", Bytes("cola"), Bytes(counter(1000))));
        REQUIRE_OK(w->commit());
    }
    const uint64_t head = master->meta()->seq;
    const uint64_t txnsBefore = lastTxnId(*master);

    sync::MasterConfig mc;
    mc.listen = "127.0.0.1:0";
    mc.storeId = "store1";
    mc.deviceId = "master-dev";
    auto m = sync::Master::create(**loop, *master, mc);
    REQUIRE_OK(m);
    a.start(**loop, (*m)->port());
    b.start(**loop, (*m)->port());

    std::optional<store::ReadTxn> reader;
    if (holdReader) {
        auto rt = master->beginRead();
        REQUIRE_OK(rt);
        reader.emplace(std::move(*rt));
    }
    int heldTicks = 0;
    std::optional<uint64_t> seqAtRelease;

    // Until both outboxes are empty and both slaves hold the master's head; bounded in time.
    const uint64_t requests = 2 * (kQueued + 1);
    auto poll = uv::Timer::create(**loop);
    REQUIRE_OK(poll);
    int ticks = 0;
    bool done = false;
    (*poll)->start(10, 10, [&] {
        if (reader && a.replica->requestsInFlight() > 0 && b.replica->requestsInFlight() > 0 &&
            ++heldTicks >= 10) {
            seqAtRelease = master->meta()->seq;
            reader.reset();
        }
        auto ms = master->meta();
        done = ms && ms->seq == head + requests && a.drained(ms->seq) && b.drained(ms->seq);
        if (done || ++ticks > 3000) (**loop).stop();  // 30 s at most
    });
    (**loop).run();
    (*poll)->stop();
    const uint64_t txns = lastTxnId(*master) - txnsBefore;
    a.replica->stop();
    b.replica->stop();
    (*m)->stop();
    a.replica.reset();
    b.replica.reset();
    m->reset();
    poll->reset();
    reader.reset();
    REQUIRE_OK((*loop)->close());
    REQUIRE(done);
    if (holdReader) {
        // Nothing applied while the reader was open, though both slaves had sent requests.
        REQUIRE(seqAtRelease.has_value());
        CHECK(*seqAtRelease == head);
    }

    // Every request answered and settled, each slave's in its id order, once.
    uint64_t lastWinners = 0;
    for (Till* t : {&a, &b}) {
        CAPTURE(t->device);
        uint64_t prevSeq = head;
        for (uint64_t id = 1; id <= kQueued + 1; ++id) {
            CAPTURE(id);
            auto st = t->store->requestState(id);
            REQUIRE_OK(st);
            if (id <= kQueued) CHECK(st->kind == store::RequestState::Committed);
            if (id == kQueued + 1) {
                CHECK((st->kind == store::RequestState::Committed ||
                       st->kind == store::RequestState::Rejected));
                if (st->kind == store::RequestState::Committed) ++lastWinners;
            }
            CHECK(st->seq > prevSeq);
            prevSeq = st->seq;
        }
    }
    CHECK(lastWinners == 1);
    auto clients = master->clients();
    REQUIRE_OK(clients);
    REQUIRE(clients->size() == 2);
    for (const auto& c : *clients) {
        CAPTURE(c.device);
        CHECK(c.lastRequest == kQueued + 1);
        CHECK(c.applied + c.rejected == kQueued + 1);
    }
    CHECK((*clients)[0].rejected + (*clients)[1].rejected == 1);

    auto rt = master->beginRead();
    REQUIRE_OK(rt);
    auto cola = rt->get("stock", Bytes("cola"));
    REQUIRE_OK(cola);
    REQUIRE(cola->has_value());
    CHECK((*cola)->str() == counter(1000 - 2 * int64_t(kQueued)));
    rt->end();
    auto md1 = master->watchedDigest(), ad = a.store->watchedDigest(), bd = b.store->watchedDigest();
    REQUIRE_OK(md1);
    REQUIRE_OK(ad);
    REQUIRE_OK(bd);
    CHECK(ad->digest == md1->digest);
    CHECK(bd->digest == md1->digest);

    // Batches, not one transaction per request: each slave sends its window of 32 in one loop
    // callback and the master reads them in one, so all but the first wait for the worker's
    // next batch (the loop, the slaves' and the master's, is one thread).
    MESSAGE("write transactions on the master for " << requests << " requests: " << txns);
    CHECK(txns < requests);
}

}  // namespace

TEST_CASE("master: a backlog of two slaves' requests is group-committed, each answered in order") {
    drainBoth(false);
}

TEST_CASE("master: batches that meet a Busy store are requeued whole and applied in order after") {
    drainBoth(true);
}
