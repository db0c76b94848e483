// The store's trust set (DESIGN.md §11) at the store layer, no daemon: the test plays the sync
// layer by hand (INCREMENTAL: the master's log entries through ApplyTxn::apply; FULL: the
// master's real Snapshot through beginFull/applyFullChunk). What must hold: the record format
// round-trips and a malformed record is Corrupt; a master's putTrust/delTrust is a log entry
// carrying a possync.trust change; a slave ends with exactly the master's set either way, and
// never writes the set itself; possync.trust stays reserved to every other write path; digests
// and table lists do not see it; a directory made before it copes.
#include <doctest/doctest.h>
#include <lmdb.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "by_hand.h"
#include "store/trust_set.h"

using namespace possync;
using namespace possync::test;
using store::TrustHow;
using store::TrustMember;

namespace {

const std::vector<std::string> kShared = {"orders", "stock"};

store::TrustKey keyOf(uint8_t n) {
    store::TrustKey k;
    for (size_t i = 0; i < k.size(); ++i) k[i] = uint8_t(n * 31 + i);
    return k;
}

TrustMember member(uint8_t n, std::string name, TrustHow how = TrustHow::Accepted) {
    return TrustMember{keyOf(n), std::move(name), how, 1700000000000ull + n};
}

std::string valueOf(const TrustMember& m) {
    auto v = store::encodeTrustValue(m);
    REQUIRE_OK(v);
    return *v;
}

std::vector<TrustMember> setOf(store::Store& s) {
    auto all = s.trustMembers();
    REQUIRE_OK(all);
    return *all;
}

// The members sorted by key, as the table holds them.
std::vector<TrustMember> sorted(std::vector<TrustMember> v) {
    std::sort(v.begin(), v.end(), [](const TrustMember& a, const TrustMember& b) { return a.key < b.key; });
    return v;
}

store::CommitInfo write(store::Store& s, const std::function<void(store::WriteTxn&)>& body) {
    auto w = s.beginWrite();
    REQUIRE_OK(w);
    body(*w);
    auto c = w->commitWrite();
    REQUIRE_OK(c);
    return *c;
}

// One change of a log entry, copied out of the frame.
struct LoggedChange {
    std::string table;
    wire::Op op;
    std::string key, value;
};

std::vector<LoggedChange> loggedChanges(store::Store& s, uint64_t seq) {
    std::vector<LoggedChange> out;
    bool found = false;
    auto read = s.readLog(seq, 1, SIZE_MAX, [&](uint64_t at, Bytes f) {
        if (at != seq) return false;
        found = true;
        auto v = wire::verifyFrame(f);
        REQUIRE_OK(v);
        const wire::ChangeModel* cm = wire::asChangeModel(*v);
        REQUIRE(cm != nullptr);
        CHECK(cm->first_seq() == seq);
        if (cm->changes())
            for (const wire::Change* c : *cm->changes())
                out.push_back(
                    {std::string(wire::tableOf(c)), c->op(), wire::keyOf(c).str(), wire::valueOf(c).str()});
        return false;
    });
    REQUIRE_OK(read);
    REQUIRE_MESSAGE(found, "no log entry " << seq);
    return out;
}

// A master watching kShared and a slave FULL-synced to it.
struct Pair {
    Board master{"master", false}, slave{"till1", true};
    Pair() {
        REQUIRE_OK(master.s->setWatchedTables(kShared));
        fullSync(*master.s, *slave.s);
    }
};

// Applies one INCREMENTAL model built by `build` on slave `s` at its next seq; the result of
// apply() (the transaction is committed only when it succeeded).
Status applyForged(store::Store& s, const std::function<void(wire::ChangeModelWriter&)>& build) {
    auto m = s.meta();
    REQUIRE_OK(m);
    wire::ChangeModelWriter w;
    build(w);
    Bytes f = w.finishIncremental(m->generation, m->seq + 1, m->seq + 1);
    auto a = s.beginApply();
    REQUIRE_OK(a);
    auto r = a->apply(wire::asChangeModel(wire::GetFrame(f.data)));
    if (!r) {
        CHECK_FALSE(a->commit().ok());  // the failure poisoned the transaction
        return r;
    }
    REQUIRE_OK(a->setPosition(m->generation, m->seq + 1));
    REQUIRE_OK(a->commit());
    return r;
}

}  // namespace

TEST_SUITE("store.trust") {
    TEST_CASE("a member's record round-trips; every how has its name") {
        std::string longest(store::kMaxTrustNameBytes, 'x');
        for (const TrustMember& m :
             {member(1, "till1", TrustHow::Self), member(2, "", TrustHow::Accepted),
              member(3, "kassë-2 ☕", TrustHow::Window), member(4, longest, TrustHow::Provisioned)}) {
            CAPTURE(m.name);
            std::string v = valueOf(m);
            CHECK(v.size() == 9 + m.name.size());
            CHECK(getBe64(reinterpret_cast<const uint8_t*>(v.data())) == m.addedMs);
            CHECK(uint8_t(v[8]) == uint8_t(m.how));
            auto back = store::decodeTrustMember(store::trustKeyBytes(m.key), Bytes(v));
            REQUIRE_OK(back);
            CHECK(*back == m);
        }
        CHECK(std::string(store::trustHowName(TrustHow::Self)) == "self");
        CHECK(std::string(store::trustHowName(TrustHow::Accepted)) == "accepted");
        CHECK(std::string(store::trustHowName(TrustHow::Window)) == "window");
        CHECK(std::string(store::trustHowName(TrustHow::Provisioned)) == "provisioned");
        CHECK(std::string(store::trustHowName(TrustHow(9))) == "unknown");
    }

    TEST_CASE("a member that cannot be stored is InvalidArgument") {
        auto tooLong = store::encodeTrustValue(member(1, std::string(store::kMaxTrustNameBytes + 1, 'x')));
        REQUIRE_FALSE(tooLong.ok());
        CHECK(tooLong.error().code == Errc::InvalidArgument);
        auto notUtf8 = store::encodeTrustValue(member(1, "till\xff"));
        REQUIRE_FALSE(notUtf8.ok());
        CHECK(notUtf8.error().code == Errc::InvalidArgument);
        auto badHow = store::encodeTrustValue(member(1, "till1", TrustHow(4)));
        REQUIRE_FALSE(badHow.ok());
        CHECK(badHow.error().code == Errc::InvalidArgument);
    }

    TEST_CASE("a malformed record is Corrupt naming possync.trust") {
        const std::string good = valueOf(member(1, "till1"));
        const store::TrustKey k = keyOf(1);
        const Bytes key = store::trustKeyBytes(k);
        auto withHow = [&](uint8_t how) {
            std::string v = good;
            v[8] = char(how);
            return v;
        };
        std::string longName = good.substr(0, 9) + std::string(store::kMaxTrustNameBytes + 1, 'x');
        std::string badName = good.substr(0, 9) + "ti\xc3\x28";
        std::string short31(31, 'k'), long33(33, 'k');
        struct Case {
            const char* name;
            Bytes key;
            std::string value;
        };
        std::vector<Case> cases = {
            {"key of 31 bytes", Bytes(short31), good},
            {"key of 33 bytes", Bytes(long33), good},
            {"empty key", Bytes(), good},
            {"empty value", key, ""},
            {"value of 8 bytes", key, good.substr(0, 8)},
            {"unknown how", key, withHow(4)},
            {"how 255", key, withHow(255)},
            {"name of 65 bytes", key, longName},
            {"name not UTF-8", key, badName},
        };
        for (const auto& c : cases) {
            CAPTURE(c.name);
            auto r = store::decodeTrustMember(c.key, Bytes(c.value));
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code == Errc::Corrupt);
            CHECK(r.error().message.find("possync.trust") != std::string::npos);
        }
    }

    TEST_CASE("putTrust on a master is a log entry carrying a possync.trust PUT") {
        Board m("master", false);
        REQUIRE_OK(m.s->setWatchedTables(kShared));
        put(*m.s, "orders", "o1", "burger");
        const uint64_t before = m.s->meta()->seq;
        auto digest = m.s->watchedDigest();
        REQUIRE_OK(digest);
        CHECK(setOf(*m.s).empty());

        const TrustMember a = member(1, "master", TrustHow::Self);
        auto c = write(*m.s, [&](store::WriteTxn& w) {
            REQUIRE_OK(w.putTrust(a));
            CHECK(w.capturedChanges() == 1);
        });
        CHECK(c.seq == before + 1);
        CHECK(m.s->meta()->seq == before + 1);
        auto logged = loggedChanges(*m.s, c.seq);
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].table == "possync.trust");
        CHECK(logged[0].op == wire::Op::PUT);
        CHECK(logged[0].key == store::trustKeyBytes(a.key).str());
        CHECK(logged[0].value == valueOf(a));

        CHECK(setOf(*m.s) == std::vector<TrustMember>{a});
        auto one = m.s->trustMember(a.key);
        REQUIRE_OK(one);
        REQUIRE(one->has_value());
        CHECK(**one == a);
        auto none = m.s->trustMember(keyOf(9));
        REQUIRE_OK(none);
        CHECK_FALSE(none->has_value());

        // Not a business table: digests, table lists and tables() do not see it.
        auto after = m.s->watchedDigest();
        REQUIRE_OK(after);
        CHECK(after->digest == digest->digest);
        CHECK(after->seq == before + 1);
        auto rt = m.s->beginRead();
        REQUIRE_OK(rt);
        auto names = rt->tableNames();
        REQUIRE_OK(names);
        CHECK(*names == std::vector<std::string>{"orders"});
        CHECK(*rt->digest("possync.trust") == 0);
        auto tables = m.s->tables();
        REQUIRE_OK(tables);
        for (const auto& t : *tables) CHECK(t.name != "possync.trust");

        // Replacing a member (same key) and a business write in one transaction: one entry.
        TrustMember renamed = a;
        renamed.name = "master-2";
        auto c2 = write(*m.s, [&](store::WriteTxn& w) {
            REQUIRE_OK(w.put("orders", Bytes("o2"), Bytes("fries")));
            REQUIRE_OK(w.putTrust(renamed));
        });
        CHECK(c2.seq == c.seq + 1);
        auto logged2 = loggedChanges(*m.s, c2.seq);
        REQUIRE(logged2.size() == 2);
        CHECK(logged2[0].table == "orders");
        CHECK(logged2[1].table == "possync.trust");
        CHECK(setOf(*m.s) == std::vector<TrustMember>{renamed});
    }

    TEST_CASE("delTrust: a member's removal is logged as a DEL; an absent key changes nothing") {
        Board m("master", false);
        REQUIRE_OK(m.s->setWatchedTables(kShared));
        const TrustMember a = member(1, "master", TrustHow::Self), b = member(2, "till1");
        write(*m.s, [&](store::WriteTxn& w) {
            REQUIRE_OK(w.putTrust(a));
            REQUIRE_OK(w.putTrust(b));
        });
        const uint64_t head = m.s->meta()->seq;

        auto none = write(*m.s, [&](store::WriteTxn& w) {
            auto r = w.delTrust(keyOf(7));
            REQUIRE_OK(r);
            CHECK_FALSE(*r);
            CHECK(w.capturedChanges() == 0);
        });
        CHECK(none.seq == 0);
        CHECK(m.s->meta()->seq == head);

        auto c = write(*m.s, [&](store::WriteTxn& w) {
            auto r = w.delTrust(b.key);
            REQUIRE_OK(r);
            CHECK(*r);
        });
        CHECK(c.seq == head + 1);
        auto logged = loggedChanges(*m.s, c.seq);
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].table == "possync.trust");
        CHECK(logged[0].op == wire::Op::DEL);
        CHECK(logged[0].key == store::trustKeyBytes(b.key).str());
        CHECK(setOf(*m.s) == std::vector<TrustMember>{a});
        auto gone = m.s->trustMember(b.key);
        REQUIRE_OK(gone);
        CHECK_FALSE(gone->has_value());
    }

    TEST_CASE("an aborted transaction leaves the set as it was") {
        Board m("master", false);
        {
            auto w = m.s->beginWrite();
            REQUIRE_OK(w);
            REQUIRE_OK(w->putTrust(member(1, "till1")));
            w->abort();
        }
        CHECK(setOf(*m.s).empty());
        CHECK(m.s->meta()->seq == 0);
    }

    TEST_CASE("INCREMENTAL: a slave applying the master's entries ends with the master's set") {
        Pair p;
        store::Store& m = *p.master.s;
        store::Store& s = *p.slave.s;
        const TrustMember a = member(1, "master", TrustHow::Self), b = member(2, "till1"),
                          c = member(3, "till2", TrustHow::Window),
                          d = member(4, "till3", TrustHow::Provisioned);
        write(m, [&](store::WriteTxn& w) {
            REQUIRE_OK(w.putTrust(a));
            REQUIRE_OK(w.putTrust(b));
            REQUIRE_OK(w.putTrust(c));
        });
        write(m, [&](store::WriteTxn& w) {
            REQUIRE_OK(w.put("orders", Bytes("o1"), Bytes("burger")));
            REQUIRE_OK(w.putTrust(d));
            REQUIRE(*w.delTrust(b.key));
        });
        TrustMember renamed = c;
        renamed.name = "till2-bar";
        write(m, [&](store::WriteTxn& w) { REQUIRE_OK(w.putTrust(renamed)); });
        const auto expected = sorted({a, renamed, d});
        REQUIRE(setOf(m) == expected);

        replicate(m, s);
        CHECK(setOf(s) == expected);
        CHECK(s.meta()->seq == m.meta()->seq);
        CHECK(s.watchedDigest()->digest == m.watchedDigest()->digest);
        auto r = s.beginRead();
        REQUIRE_OK(r);
        auto o1 = r->get("orders", Bytes("o1"));
        REQUIRE_OK(o1);
        CHECK((*o1 && (*o1)->str() == "burger"));
        auto names = r->tableNames();
        REQUIRE_OK(names);
        CHECK(*names == kShared);  // the FULL made both watched tables; possync.trust is not listed
        r->end();
        // The slave keeps the entries as received (a promoted slave serves its slaves from them).
        auto logged = loggedChanges(s, m.meta()->seq);
        REQUIRE(logged.size() == 1);
        CHECK(logged[0].table == "possync.trust");

        // A replay of the same entries (a resend) changes nothing.
        auto again = s.beginApply();
        REQUIRE_OK(again);
        auto replay = m.readLog(1, 1000000, SIZE_MAX, [&](uint64_t, Bytes f) {
            auto v = wire::verifyFrame(f);
            REQUIRE_OK(v);
            REQUIRE_OK(again->apply(wire::asChangeModel(*v), f));
            return true;
        });
        REQUIRE_OK(replay);
        REQUIRE_OK(again->commit());
        CHECK(setOf(s) == expected);
    }

    TEST_CASE("INCREMENTAL: a malformed possync.trust change fails the whole transaction") {
        Pair p;
        store::Store& s = *p.slave.s;
        const TrustMember a = member(1, "master", TrustHow::Self);
        REQUIRE_OK(applyForged(s, [&](wire::ChangeModelWriter& w) {
            w.put("possync.trust", store::trustKeyBytes(a.key), Bytes(valueOf(a)));
        }));
        REQUIRE(setOf(s) == std::vector<TrustMember>{a});
        const uint64_t at = s.meta()->seq;
        std::string badHow = valueOf(member(2, "till1"));
        badHow[8] = 7;
        std::string shortKey(31, 'k');
        struct Case {
            const char* name;
            std::function<void(wire::ChangeModelWriter&)> build;
            Errc code;
        };
        std::vector<Case> cases = {
            {"value too short",
             [&](wire::ChangeModelWriter& w) {
                 w.put("orders", Bytes("o1"), Bytes("x"));
                 w.put("possync.trust", store::trustKeyBytes(keyOf(2)), Bytes("short"));
             },
             Errc::Corrupt},
            {"unknown how",
             [&](wire::ChangeModelWriter& w) {
                 w.put("possync.trust", store::trustKeyBytes(keyOf(2)), Bytes(badHow));
             },
             Errc::Corrupt},
            {"PUT with a 31-byte key",
             [&](wire::ChangeModelWriter& w) {
                 w.put("possync.trust", Bytes(shortKey), Bytes(valueOf(member(2, "till1"))));
             },
             Errc::Corrupt},
            {"DEL with a 31-byte key",
             [&](wire::ChangeModelWriter& w) { w.del("possync.trust", Bytes(shortKey)); }, Errc::Protocol},
            {"CLEAR",
             [&](wire::ChangeModelWriter& w) {
                 w.put("orders", Bytes("o1"), Bytes("x"));
                 w.clear("possync.trust");
             },
             Errc::Protocol},
        };
        for (const auto& c : cases) {
            CAPTURE(c.name);
            auto r = applyForged(s, c.build);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code == c.code);
            CHECK(r.error().message.find("possync.trust") != std::string::npos);
            CHECK(setOf(s) == std::vector<TrustMember>{a});
            CHECK(s.meta()->seq == at);
            auto rt = s.beginRead();
            REQUIRE_OK(rt);
            auto o1 = rt->get("orders", Bytes("o1"));
            CHECK((!o1.ok() || !o1->has_value()));
        }
        // A DEL of a key that is not a member is no error (the master had it; idempotent replay).
        REQUIRE_OK(applyForged(
            s, [&](wire::ChangeModelWriter& w) { w.del("possync.trust", store::trustKeyBytes(keyOf(5))); }));
        CHECK(setOf(s) == std::vector<TrustMember>{a});
    }

    TEST_CASE("FULL: a slave that held another set ends with exactly the master's") {
        Board other("old-master", false), m("master", false), s("till1", true);
        REQUIRE_OK(other.s->setWatchedTables(kShared));
        write(*other.s, [&](store::WriteTxn& w) {
            REQUIRE_OK(w.putTrust(member(7, "old-master", TrustHow::Self)));
            REQUIRE_OK(w.putTrust(member(2, "till1-old-name")));  // a key the new master also has
            REQUIRE_OK(w.putTrust(member(8, "gone")));
        });
        fullSync(*other.s, *s.s);
        REQUIRE(setOf(*s.s) == setOf(*other.s));
        REQUIRE(setOf(*s.s).size() == 3);

        REQUIRE_OK(m.s->setWatchedTables(kShared));
        put(*m.s, "orders", "o1", "burger");
        std::vector<TrustMember> members;
        for (uint8_t n = 1; n <= 6; ++n)
            members.push_back(
                member(n, "till" + std::to_string(n), n == 1 ? TrustHow::Self : TrustHow::Accepted));
        write(*m.s, [&](store::WriteTxn& w) {
            for (const auto& mm : members) REQUIRE_OK(w.putTrust(mm));
        });
        const uint64_t announced = fullSync(*m.s, *s.s);  // 200-byte chunks: the set spans several
        CHECK(setOf(*s.s) == sorted(members));
        CHECK(s.s->watchedDigest()->digest == m.s->watchedDigest()->digest);
        // Chunk 0 announced every record it carries, trust members included.
        CHECK(announced == 1 + members.size());

        // A FULL of a master with an empty set empties the slave's.
        Board empty("empty-master", false);
        REQUIRE_OK(empty.s->setWatchedTables(kShared));
        fullSync(*empty.s, *s.s);
        CHECK(setOf(*s.s).empty());
    }

    TEST_CASE("a slave never writes the trust set itself") {
        Pair p;
        store::Store& s = *p.slave.s;
        const uint64_t at = s.meta()->seq;
        auto w = s.beginWrite();
        REQUIRE_OK(w);
        REQUIRE(w->forwarding());
        auto put = w->putTrust(member(1, "till1"));
        REQUIRE_FALSE(put.ok());
        CHECK(put.error().code == Errc::Refused);
        CHECK(put.error().message == "the trust set is written on the master");
        auto del = w->delTrust(keyOf(1));
        REQUIRE_FALSE(del.ok());
        CHECK(del.error().code == Errc::Refused);
        CHECK(del.error().message == "the trust set is written on the master");
        // Refusals do not poison the transaction: its other writes still commit.
        REQUIRE_OK(w->put("orders", Bytes("o1"), Bytes("burger")));
        auto c = w->commitWrite();
        REQUIRE_OK(c);
        CHECK(c->request == 1);
        CHECK(setOf(s).empty());
        CHECK(s.meta()->seq == at);
        // Its one request carries only the business write.
        auto queued = s.readOutbox(0, [&](uint64_t, Bytes frame) {
            auto f = wire::verifyFrame(frame);
            REQUIRE_OK(f);
            const wire::WriteRequest* req = wire::asWriteRequest(*f);
            REQUIRE(req != nullptr);
            REQUIRE(req->changes());
            REQUIRE(req->changes()->size() == 1);
            CHECK(wire::tableOf(req->changes()->Get(0)) == "orders");
            return true;
        });
        REQUIRE_OK(queued);
    }

    TEST_CASE("possync.trust is reserved to put/del/clear/get and to forwarded requests") {
        Pair p;
        store::Store& m = *p.master.s;
        store::Store& s = *p.slave.s;
        const TrustMember a = member(1, "master", TrustHow::Self);
        write(m, [&](store::WriteTxn& w) { REQUIRE_OK(w.putTrust(a)); });
        replicate(m, s);
        const std::string value = valueOf(member(2, "rogue"));
        const Bytes key = store::trustKeyBytes(a.key);
        auto checkReserved = [](const Error& e) {
            CHECK(e.code == Errc::InvalidArgument);
            CHECK(e.message.find("reserved") != std::string::npos);
        };
        for (store::Store* board : {&m, &s}) {
            CAPTURE(board == &m ? "master" : "slave");
            auto w = board->beginWrite();
            REQUIRE_OK(w);
            auto r1 = w->put("possync.trust", key, Bytes(value));
            REQUIRE_FALSE(r1.ok());
            checkReserved(r1.error());
            auto r2 = w->del("possync.trust", key);
            REQUIRE_FALSE(r2.ok());
            checkReserved(r2.error());
            auto r3 = w->clear("possync.trust");
            REQUIRE_FALSE(r3.ok());
            checkReserved(r3.error());
            auto r4 = w->add("possync.trust", key, 1);
            REQUIRE_FALSE(r4.ok());
            checkReserved(r4.error());
            auto r5 = w->get("possync.trust", key);
            REQUIRE_FALSE(r5.ok());
            checkReserved(r5.error());
            auto c = w->commitWrite();
            REQUIRE_OK(c);
            CHECK(c->seq == 0);
            CHECK(c->request == 0);
            auto rt = board->beginRead();
            REQUIRE_OK(rt);
            auto r6 = rt->get("possync.trust", key);
            REQUIRE_FALSE(r6.ok());
            checkReserved(r6.error());
        }
        // A forged request (a rogue or buggy slave) on possync.trust: rejected, nothing logged.
        const uint64_t head = m.meta()->seq;
        for (wire::Op op : {wire::Op::PUT, wire::Op::DEL, wire::Op::CLEAR}) {
            CAPTURE(int(op));
            wire::RequestWriter writer;
            writer.change("possync.trust", op, op == wire::Op::CLEAR ? Bytes() : key,
                          op == wire::Op::PUT ? Bytes(value) : Bytes());
            std::string frame = writer.finish("till1", 100 + uint64_t(op), m.meta()->generation, 1).str();
            auto f = wire::verifyFrame(Bytes(frame));
            REQUIRE_OK(f);
            auto o = m.applyRequest(wire::asWriteRequest(*f));
            REQUIRE_OK(o);
            CHECK(o->result.rejected);
            CHECK(o->result.seq == 0);
            CHECK(o->result.reason.find("reserved") != std::string::npos);
        }
        CHECK(m.meta()->seq == head);
        CHECK(setOf(m) == std::vector<TrustMember>{a});
        CHECK(setOf(s) == std::vector<TrustMember>{a});
    }

    TEST_CASE("a directory made before possync.trust: empty when read-only, created on a writable open") {
        TempDir d;
        {
            auto s = openStore(d.path());
            REQUIRE_OK(s->setWatchedTables(kShared));
            put(*s, "orders", "o1", "burger");
            // Take possync.trust out, as a directory of an older possync never had it.
            auto txn = lmdb::Txn::begin(s->env(), true);
            REQUIRE_OK(txn);
            REQUIRE(mdb_drop(txn->raw(), s->trustDbi(), 1) == 0);
            REQUIRE_OK(txn->commit());
        }
        {
            store::StoreOptions ro;
            ro.readOnly = true;
            auto s = openStore(d.path(), ro);
            CHECK_FALSE(s->hasTrustDb());
            CHECK(setOf(*s).empty());
            auto one = s->trustMember(keyOf(1));
            REQUIRE_OK(one);
            CHECK_FALSE(one->has_value());
            auto rt = s->beginRead();
            REQUIRE_OK(rt);
            auto scan = rt->scanReplicated("possync.trust", Bytes(), [](Bytes, Bytes) { return true; });
            REQUIRE_FALSE(scan.ok());
            CHECK(scan.error().code == Errc::NotFound);
            auto n = rt->entriesReplicated("possync.trust");
            REQUIRE_FALSE(n.ok());
            CHECK(n.error().code == Errc::NotFound);
        }
        auto s = openStore(d.path());
        CHECK(s->hasTrustDb());
        write(*s, [&](store::WriteTxn& w) { REQUIRE_OK(w.putTrust(member(1, "master", TrustHow::Self))); });
        CHECK(setOf(*s).size() == 1);
        auto rt = s->beginRead();
        REQUIRE_OK(rt);
        auto n = rt->entriesReplicated("possync.trust");
        REQUIRE_OK(n);
        CHECK(*n == 1);
    }
}
