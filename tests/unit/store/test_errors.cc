// Identity, format checks and the documented errors for bad input.
#include <doctest/doctest.h>

#include <fstream>

#include "fixture.h"
#include "possync_config.h"

using namespace possync;
using namespace possync::test;

TEST_CASE("generation and device id are made once and survive reopen") {
    TempDir d;
    uint64_t gen;
    std::string dev;
    {
        store::StoreOptions o;
        o.deviceId = "till-1";
        auto s = openStore(d.path(), o);
        gen = s->meta()->generation;
        dev = s->meta()->device;
        CHECK(dev == "till-1");
        CHECK(s->meta()->format == POSSYNC_FORMAT_VERSION);
    }
    auto s = openStore(d.path());
    CHECK(s->meta()->generation == gen);
    CHECK(s->meta()->device == dev);
    TempDir other;
    CHECK(openStore(other.path())->meta()->generation != gen);
}

TEST_CASE("a directory written by a newer format version is refused with a reason") {
    TempDir d;
    {
        auto s = openStore(d.path());
        auto txn = lmdb::Txn::begin(s->env(), true);
        REQUIRE_OK(txn);
        REQUIRE_OK(store::writeMetaU64(*txn, s->metaDbi(), "format", POSSYNC_FORMAT_VERSION + 1));
        REQUIRE_OK(txn->commit());
    }
    auto s = store::Store::open(d.path(), {});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == Errc::Version);
    CHECK(s.error().message.find("format version 2") != std::string::npos);
    CHECK(s.error().message.find('\n') == std::string::npos);
}

TEST_CASE("a directory that is not an LMDB environment is refused with a reason") {
    TempDir d;
    std::ofstream(d.sub("data.mdb"))
        << "this is not lmdb, just a text file that is long enough to read a header from it";
    auto s = store::Store::open(d.path(), {});
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message.find("not a possync data directory") != std::string::npos);

    std::ofstream(d.sub("plainfile")) << "x";
    auto f = store::Store::open(d.sub("plainfile"), {});
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().message.find("not a directory") != std::string::npos);

    store::StoreOptions ro;
    ro.create = false;
    auto missing = store::Store::open(d.sub("missing"), ro);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == Errc::NotFound);
}

TEST_CASE("bad keys and table names are refused with clear errors") {
    TempDir d;
    auto s = openStore(d.path());
    auto w = s->beginWrite();
    REQUIRE_OK(w);
    auto empty = w->put("menu", Bytes(""), Bytes("v"));
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error().message == "key is empty");
    std::string longKey(s->maxKeySize() + 1, 'k');
    auto tooLong = w->put("menu", Bytes(longKey), Bytes("v"));
    REQUIRE_FALSE(tooLong.ok());
    CHECK(tooLong.error().code == Errc::TooLarge);
    CHECK(tooLong.error().message.find("LMDB's limit is 511") != std::string::npos);
    std::string maxKey(s->maxKeySize(), 'k');
    REQUIRE_OK(w->put("menu", Bytes(maxKey), Bytes("v")));
    auto reserved = w->put("possync.meta", Bytes("seq"), Bytes("x"));
    REQUIRE_FALSE(reserved.ok());
    CHECK(reserved.error().message.find("reserved") != std::string::npos);
    auto noName = w->put("", Bytes("k"), Bytes("v"));
    REQUIRE_FALSE(noName.ok());
    CHECK(noName.error().message == "table name is empty");
    // validation errors do not poison the transaction
    REQUIRE_OK(w->commit());
    CHECK_FALSE(store::parseTableList("a,,b").ok());
    CHECK_FALSE(store::parseTableList("possync.log").ok());
    CHECK(*store::parseTableList(" b , a,b") == std::vector<std::string>{"a", "b"});
}

TEST_CASE("a full map gives a clear MapFull error, not a crash, and the data stays consistent") {
    TempDir d;
    store::StoreOptions o;
    o.mapSize = 1 << 20;  // 1 MiB
    auto s = openStore(d.path(), o);
    REQUIRE_OK(s->setWatchedTables({"t"}));
    std::string value(2000, 'v');
    Status failed;
    for (int txnNo = 0; txnNo < 100 && failed.ok(); ++txnNo) {
        auto w = s->beginWrite();
        REQUIRE_OK(w);
        for (int i = 0; i < 50 && failed.ok(); ++i)
            failed = w->put("t", Bytes("k" + std::to_string(txnNo * 50 + i)), Bytes(value));
        if (failed.ok()) {
            auto c = w->commit();
            if (!c.ok()) failed = c.takeError();
        }
    }
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error().code == Errc::MapFull);
    CHECK(failed.error().message.find("map_size") != std::string::npos);
    // What was committed before is intact and the log matches the seq.
    auto m = s->meta();
    REQUIRE_OK(m);
    CHECK(s->logInfo()->last == m->seq);
    // Growing the map (reopen with a larger size) makes writes work again.
    s.reset();
    store::StoreOptions big;
    big.mapSize = 8 << 20;
    auto s2 = openStore(d.path(), big);
    auto w = s2->beginWrite();
    REQUIRE_OK(w->put("t", Bytes("after"), Bytes(value)));
    REQUIRE_OK(w->commit());
}

TEST_CASE("a slave's directory refuses writes; a master's refuses apply") {
    TempDir d;
    auto s = openStore(d.path());
    auto a = s->beginApply();
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().code == Errc::Refused);
    REQUIRE_OK(s->setRole(store::Role::Slave));
    auto w = s->beginWrite();
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == Errc::Refused);
    CHECK(w.error().message.find("slave") != std::string::npos);
    REQUIRE_OK(s->beginApply());
}

TEST_CASE("slave to master starts a new generation and an empty log") {
    TempDir d;
    auto s = openStore(d.path());
    REQUIRE_OK(s->setWatchedTables({"t"}));
    auto gen = s->meta()->generation;
    REQUIRE_OK(s->setRole(store::Role::Slave));
    REQUIRE_OK(s->setRole(store::Role::Master));
    auto m = s->meta();
    CHECK(m->generation != gen);
    CHECK(m->seq == 0);
    CHECK(s->logInfo()->entries == 0);
}
