// The real Master and Replica over TCP on 127.0.0.1 (one loop) with sealed links (DESIGN.md
// §11): a slave whose key the master trusts, and which trusts the master's key, gets a FULL
// and then INCREMENTAL changes; a slave the master does not trust, a master the slave does not
// trust (a rogue with the right store id), and a plaintext peer on either side get nothing:
// their data stays as it was.
#include <doctest/doctest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "uv/loop.h"
#include "uv/timer.h"

#include "fixture.h"
#include "sync/secure_link.h"
#include "trust/identity.h"

using namespace possync;
using namespace possync::test;
using trust::Identity;
using trust::PeerStanding;
using trust::PublicKey;

namespace {

trust::PeerCheck admitOnly(const PublicKey& member) {
    return [member](const PublicKey& peer, uint32_t) -> Result<PeerStanding> {
        if (peer != member) return makeError(Errc::Refused, "not in this store's trust set");
        return PeerStanding::Member;
    };
}

void putMany(store::Store& s, const std::string& prefix, int n) {
    auto w = s.beginWrite();
    REQUIRE_OK(w);
    for (int i = 0; i < n; ++i)
        REQUIRE_OK(
            w->put("orders", Bytes(prefix + std::to_string(i)), Bytes("espresso " + std::to_string(i))));
    REQUIRE_OK(w->commit());
}

struct Run {
    std::optional<sync::LinkSecurity> masterSecurity, slaveSecurity;
    uint64_t wantSeq = 0;   // stop once the slave holds this seq (0: run the whole time)
    uint64_t maxMs = 1500;  // bound
    bool incrementalAfterFull = false;
};

struct Outcome {
    uint64_t slaveSeq = 0;
    uint64_t masterSeq = 0;
    bool digestsEqual = false;
    uint64_t slaveFullSyncs = 0;
};

Outcome run(const Run& r) {
    auto loop = uv::Loop::create();
    REQUIRE_OK(loop);
    TempDir md, sd;
    store::StoreOptions mo;
    mo.deviceId = "master-dev";
    auto master = openStore(md.path(), mo);
    REQUIRE_OK(master->setWatchedTables({"orders"}));
    putMany(*master, "a", 200);
    store::StoreOptions so;
    so.deviceId = "till1";
    auto slave = openStore(sd.path(), so);
    REQUIRE_OK(slave->setRole(store::Role::Slave));

    sync::MasterConfig mc;
    mc.listen = "127.0.0.1:0";
    mc.storeId = "store1";
    mc.deviceId = "master-dev";
    mc.security = r.masterSecurity;
    auto m = sync::Master::create(**loop, *master, mc);
    REQUIRE_OK(m);
    TestLocator locator;
    locator.port = (*m)->port();
    sync::ReplicaConfig rc;
    rc.storeId = "store1";
    rc.deviceId = "till1";
    rc.backoffMinMs = 20;
    rc.backoffMaxMs = 100;
    rc.security = r.slaveSecurity;
    auto rep = sync::Replica::create(**loop, *slave, locator, rc);
    REQUIRE_OK(rep);
    (*rep)->start();

    auto poll = uv::Timer::create(**loop);
    REQUIRE_OK(poll);
    uint64_t elapsed = 0;
    bool wroteMore = false;
    (*poll)->start(10, 10, [&] {
        elapsed += 10;
        auto sm = slave->meta();
        auto mm = master->meta();
        if (r.incrementalAfterFull && !wroteMore && sm && mm && sm->seq == mm->seq) {
            putMany(*master, "b", 50);  // streamed as INCREMENTAL
            wroteMore = true;
        }
        mm = master->meta();
        bool reached = r.wantSeq && sm && mm && sm->seq == mm->seq && (!r.incrementalAfterFull || wroteMore);
        if (reached || elapsed >= r.maxMs) (**loop).stop();
    });
    (**loop).run();
    Outcome o;
    o.slaveFullSyncs = (*rep)->stats().fullSyncs;
    (*rep)->stop();
    (*m)->stop();
    rep->reset();
    m->reset();
    poll->reset();
    REQUIRE_OK((*loop)->close());
    o.slaveSeq = slave->meta()->seq;
    o.masterSeq = master->meta()->seq;
    auto a = master->watchedDigest(), b = slave->watchedDigest();
    o.digestsEqual = a && b && a->digest == b->digest;
    return o;
}

}  // namespace

TEST_CASE("a trusted slave of a trusted master syncs FULL, then INCREMENTAL, over sealed links") {
    REQUIRE(trust::initSodium().ok());
    Identity masterKey = Identity::generate(), slaveKey = Identity::generate();
    Run r;
    r.masterSecurity = sync::LinkSecurity{masterKey, admitOnly(slaveKey.publicKey())};
    r.slaveSecurity = sync::LinkSecurity{slaveKey, admitOnly(masterKey.publicKey())};
    r.wantSeq = 1;
    r.incrementalAfterFull = true;
    r.maxMs = 20000;
    Outcome o = run(r);
    CHECK(o.slaveSeq == o.masterSeq);
    CHECK(o.digestsEqual);
    CHECK(o.slaveFullSyncs == 1);
}

TEST_CASE("nothing reaches a slave the master does not trust, nor from a master the slave does not trust") {
    REQUIRE(trust::initSodium().ok());
    Identity masterKey = Identity::generate(), slaveKey = Identity::generate(), other = Identity::generate();
    SUBCASE("the master does not trust the slave's key") {
        Run r;
        r.masterSecurity = sync::LinkSecurity{masterKey, admitOnly(other.publicKey())};
        r.slaveSecurity = sync::LinkSecurity{slaveKey, admitOnly(masterKey.publicKey())};
        Outcome o = run(r);
        CHECK(o.slaveSeq == 0);
        CHECK(o.slaveFullSyncs == 0);
    }
    SUBCASE("a rogue master (right store id, a key the slave does not trust)") {
        Run r;
        r.masterSecurity = sync::LinkSecurity{other, admitOnly(slaveKey.publicKey())};
        r.slaveSecurity = sync::LinkSecurity{slaveKey, admitOnly(masterKey.publicKey())};
        Outcome o = run(r);
        CHECK(o.slaveSeq == 0);
        CHECK(o.slaveFullSyncs == 0);
    }
    SUBCASE("a plaintext slave at a sealed master") {
        Run r;
        r.masterSecurity = sync::LinkSecurity{masterKey, admitOnly(slaveKey.publicKey())};
        Outcome o = run(r);
        CHECK(o.slaveSeq == 0);
    }
    SUBCASE("a sealed slave at a plaintext master") {
        Run r;
        r.slaveSecurity = sync::LinkSecurity{slaveKey, admitOnly(masterKey.publicKey())};
        Outcome o = run(r);
        CHECK(o.slaveSeq == 0);
    }
}
