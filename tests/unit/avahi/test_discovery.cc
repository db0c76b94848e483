// Unit tests: firmware/discovery without a daemon: TXT contract, HOST:PORT, the candidate
// table (store/proto filter, updates, conflicts, choose) and MasterFinder's events.
#include <doctest/doctest.h>
#include <uv.h>

#include <cstdlib>

#include "log/log.h"

#include "discovery/advertiser.h"
#include "discovery/announcement.h"
#include "discovery/master_finder.h"
#include "possync_config.h"

using namespace possync;
using namespace possync::discovery;

namespace {
Sighting sighting(std::string name, std::string store, std::string dev, std::string address,
                  uint16_t port = 7700, std::string gen = "00000000000000aa",
                  std::string proto = std::to_string(POSSYNC_PROTOCOL_VERSION)) {
    Sighting s;
    s.serviceName = std::move(name);
    s.host = "h.local";
    s.address = std::move(address);
    s.port = port;
    s.txt = {{"store", std::move(store)}, {"dev", std::move(dev)}, {"proto", std::move(proto)}};
    if (!gen.empty()) s.txt["gen"] = gen;
    s.interfaceIndex = 2;
    return s;
}

Sighting termed(std::string name, std::string dev, std::string address, uint64_t term) {
    Sighting s = sighting(std::move(name), "42", std::move(dev), std::move(address));
    s.txt["term"] = std::to_string(term);
    return s;
}
}  // namespace

TEST_CASE("announcement: TXT items in contract order, parsed back") {
    Announcement a{"42", "devA", 1, 0x0123456789abcdefULL};
    auto txt = makeTxt(a);
    REQUIRE(txt.size() == 4);
    CHECK(txt[0] == std::pair<std::string, std::string>{"store", "42"});
    CHECK(txt[1] == std::pair<std::string, std::string>{"dev", "devA"});
    CHECK(txt[2] == std::pair<std::string, std::string>{"proto", "1"});
    CHECK(txt[3] == std::pair<std::string, std::string>{"gen", "0123456789abcdef"});

    std::map<std::string, std::string> m(txt.begin(), txt.end());
    auto back = parseAnnouncement(m);
    REQUIRE(back.ok());
    CHECK(back->storeId == "42");
    CHECK(back->deviceId == "devA");
    CHECK(back->proto == 1);
    REQUIRE(back->generation.has_value());
    CHECK(*back->generation == 0x0123456789abcdefULL);

    m.erase("gen");
    auto noGen = parseAnnouncement(m);
    REQUIRE(noGen.ok());
    CHECK_FALSE(noGen->generation.has_value());
}

TEST_CASE("announcement: malformed TXT records are refused with the reason") {
    std::map<std::string, std::string> good{{"store", "42"}, {"dev", "d"}, {"proto", "1"}, {"gen", "ff"}};
    auto without = [&](const char* key) {
        auto m = good;
        m.erase(key);
        return parseAnnouncement(m);
    };
    CHECK(without("store").error().message.find("store=") != std::string::npos);
    CHECK(without("dev").error().message.find("dev=") != std::string::npos);
    CHECK(without("proto").error().message.find("proto=") != std::string::npos);
    auto m = good;
    m["proto"] = "one";
    CHECK_FALSE(parseAnnouncement(m).ok());
    m = good;
    m["gen"] = "xyz";
    CHECK(parseAnnouncement(m).error().message.find("gen=xyz") != std::string::npos);
    m["gen"] = "11112222333344445";  // 17 digits
    CHECK_FALSE(parseAnnouncement(m).ok());
    m = good;
    m["store"] = "";
    CHECK_FALSE(parseAnnouncement(m).ok());
}

TEST_CASE("announcement: ids and default service names") {
    CHECK(validateId("store id", "42").ok());
    CHECK(validateId("device id", "till-03_a.b").ok());
    CHECK_FALSE(validateId("store id", "").ok());
    CHECK_FALSE(validateId("store id", "a b").ok());
    CHECK_FALSE(validateId("store id", "a=b").ok());
    CHECK_FALSE(validateId("store id", std::string(65, 'x')).ok());
    CHECK(validateId("device id", "x y").error().message.find("device id") == 0);
    CHECK(defaultServiceName("42", "devA") == "possync-42-devA");
    CHECK(defaultServiceName(std::string(64, 's'), "d").size() == 63);
}

TEST_CASE("candidate table: only our store and protocol become candidates") {
    CandidateTable t("42", POSSYNC_PROTOCOL_VERSION);
    CHECK(t.state() == FinderState::Searching);
    CHECK(t.choose().error().code == Errc::NotFound);

    CHECK_FALSE(t.seen(sighting("other", "7", "devC", "10.0.0.3"), 1000).has_value());
    CHECK_FALSE(t.seen(sighting("future", "42", "devF", "10.0.0.4", 7700, "01",
                                std::to_string(POSSYNC_PROTOCOL_VERSION + 1)),
                       1000)
                    .has_value());
    Sighting junk = sighting("junk", "42", "devJ", "10.0.0.5");
    junk.txt.erase("dev");
    CHECK_FALSE(t.seen(junk, 1000).has_value());
    CHECK(t.candidates().empty());
    auto ign = t.ignored();
    REQUIRE(ign.size() == 3);
    CHECK(ign[0].serviceName == "future");
    CHECK(ign[0].reason == "protocol " + std::to_string(POSSYNC_PROTOCOL_VERSION + 1));
    CHECK(ign[1].reason.find("bad TXT") == 0);
    CHECK(ign[2].reason == "store 7");
    CHECK(ign[2].endpoint == "10.0.0.3:7700");

    auto add = t.seen(sighting("possync-42-devA", "42", "devA", "10.0.0.1"), 2000);
    REQUIRE(add.has_value());
    CHECK(add->kind == Change::Kind::Added);
    CHECK(add->candidate.deviceId == "devA");
    CHECK(add->candidate.generation == 0xaaULL);
    CHECK(add->candidate.seenWallMs == 2000);
    CHECK(t.state() == FinderState::Found);
    auto chosen = t.choose();
    REQUIRE(chosen.ok());
    CHECK(chosen->endpoint() == "10.0.0.1:7700");
    CHECK(t.conflictText().empty());
}

TEST_CASE("candidate table: a master whose key is not trusted is no candidate (no conflict, no choice)") {
    CandidateTable t("42", POSSYNC_PROTOCOL_VERSION);
    t.setKeyFilter([](const std::string& fp) { return fp == "00000000000000aa"; });
    Sighting real = sighting("possync-42-mA", "42", "mA", "10.0.0.1");
    real.txt["key"] = "00000000000000aa";
    Sighting rogue = sighting("possync-42-mC", "42", "mC", "10.0.0.9");
    rogue.txt["key"] = "00000000000000bb";
    Sighting keyless = sighting("possync-42-mD", "42", "mD", "10.0.0.8");
    REQUIRE(t.seen(real, 1000).has_value());
    CHECK_FALSE(t.seen(rogue, 1000).has_value());
    CHECK_FALSE(t.seen(keyless, 1000).has_value());
    CHECK(t.state() == FinderState::Found);  // not a conflict: the rogue does not count
    auto chosen = t.choose();
    REQUIRE(chosen.ok());
    CHECK(chosen->deviceId == "mA");
    CHECK(chosen->keyFingerprint == "00000000000000aa");
    auto ign = t.ignored();
    REQUIRE(ign.size() == 2);
    CHECK(ign[0].serviceName == "possync-42-mC");
    CHECK(ign[0].reason.find("untrusted key 00000000000000bb: not in this store's trust set") == 0);
    CHECK(ign[1].reason.find("untrusted key (none announced)") == 0);
    // An older board (protocol 4) is named as one to upgrade.
    CHECK_FALSE(t.seen(sighting("old", "42", "mO", "10.0.0.7", 7700, "01", "4"), 1000).has_value());
    bool named = false;
    for (const auto& i : t.ignored())
        named |= i.serviceName == "old" && i.reason.find("upgrade it") != std::string::npos;
    CHECK(named);
}

TEST_CASE("candidate table: updates, identical re-resolves, removal, store change") {
    CandidateTable t("42", POSSYNC_PROTOCOL_VERSION);
    REQUIRE(t.seen(sighting("m", "42", "devA", "10.0.0.1"), 1000));
    CHECK_FALSE(t.seen(sighting("m", "42", "devA", "10.0.0.1"), 2000).has_value());
    CHECK(t.candidates()[0].seenWallMs == 2000);  // refreshed, but no change reported

    auto gen = t.seen(sighting("m", "42", "devA", "10.0.0.1", 7700, "00000000000000bb"), 3000);
    REQUIRE(gen.has_value());
    CHECK(gen->kind == Change::Kind::Updated);
    CHECK(gen->candidate.generation == 0xbbULL);
    auto port = t.seen(sighting("m", "42", "devA", "10.0.0.1", 7800, "00000000000000bb"), 3000);
    REQUIRE(port.has_value());
    CHECK(port->kind == Change::Kind::Updated);
    CHECK(t.choose()->port == 7800);

    // The board now says another store: it stops being our candidate.
    auto moved = t.seen(sighting("m", "43", "devA", "10.0.0.1", 7800), 4000);
    REQUIRE(moved.has_value());
    CHECK(moved->kind == Change::Kind::Removed);
    CHECK(t.state() == FinderState::Searching);
    CHECK(t.ignored().size() == 1);

    REQUIRE(t.seen(sighting("m", "42", "devA", "10.0.0.1"), 5000));
    CHECK(t.ignored().empty());
    auto gone = t.gone("m");
    REQUIRE(gone.has_value());
    CHECK(gone->kind == Change::Kind::Removed);
    CHECK(gone->candidate.serviceName == "m");
    CHECK_FALSE(t.gone("m").has_value());
    CHECK(t.state() == FinderState::Searching);
}

TEST_CASE("candidate table: one board under two names is not a conflict; two boards are") {
    CandidateTable t("42", POSSYNC_PROTOCOL_VERSION);
    REQUIRE(t.seen(sighting("possync-42-devA", "42", "devA", "10.231.0.10"), 1000));
    REQUIRE(t.seen(sighting("possync-42-devA #2", "42", "devA", "10.231.0.10", 7701), 5000));
    CHECK(t.candidates().size() == 2);
    CHECK(t.state() == FinderState::Found);
    REQUIRE(t.choose().ok());
    CHECK(t.choose()->port == 7701);  // the most recently announced

    REQUIRE(t.seen(sighting("possync-42-devB", "42", "devB", "10.231.0.11"), 6000));
    CHECK(t.state() == FinderState::Conflict);
    CHECK(t.conflictText() ==
          "2 boards claim master for store 42: devA at 10.231.0.10:7701, devB at 10.231.0.11:7700");
    auto refused = t.choose();
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == Errc::Refused);
    CHECK(refused.error().message.find("2 boards claim master for store 42") == 0);

    REQUIRE(t.gone("possync-42-devB"));
    CHECK(t.state() == FinderState::Found);
}

TEST_CASE("announcement: term= is published above 0 only, and parsed back; a bad one is refused") {
    Announcement a{"42", "devA", 3, 0xabcULL, 0};
    auto txt = makeTxt(a);
    CHECK(txt.size() == 4);  // store, dev, proto, gen: a store that never failed over looks as before
    a.term = 7;
    txt = makeTxt(a);
    REQUIRE(txt.size() == 5);
    CHECK(txt[4] == std::pair<std::string, std::string>{"term", "7"});
    auto back = parseAnnouncement({txt.begin(), txt.end()});
    REQUIRE(back.ok());
    CHECK(back->term == 7);
    CHECK(parseAnnouncement({{"store", "42"}, {"dev", "d"}, {"proto", "3"}})->term == 0);
    auto bad = parseAnnouncement({{"store", "42"}, {"dev", "d"}, {"proto", "3"}, {"term", "x1"}});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message == "TXT term=x1 is not a decimal number");
}

TEST_CASE("candidate table: the highest term is followed; an old master is superseded, not a conflict") {
    CandidateTable t("42", POSSYNC_PROTOCOL_VERSION);
    REQUIRE(t.seen(sighting("possync-42-old", "42", "old", "10.231.0.10"), 1000));
    CHECK(t.choose()->deviceId == "old");
    // A slave promoted after the old master died: term 1.
    REQUIRE(t.seen(termed("possync-42-s1", "s1", "10.231.0.11", 1), 2000));
    CHECK(t.state() == FinderState::Found);
    CHECK(t.topTerm() == 1);
    CHECK(t.choose()->deviceId == "s1");
    CHECK(t.choose()->term == 1);
    CHECK(t.conflictText().empty());
    CHECK(t.tieText().empty());
    auto ign = t.ignored();
    REQUIRE(ign.size() == 1);
    CHECK(ign[0].serviceName == "possync-42-old");
    CHECK(ign[0].reason == "term 0, superseded by term 1");

    // The new master is not visible for a while: the floor keeps the old one out.
    t.setMinTerm(1);
    REQUIRE(t.gone("possync-42-s1"));
    CHECK(t.state() == FinderState::Searching);
    auto none = t.choose();
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().code == Errc::NotFound);
    CHECK(none.error().message == "no master announces store 42 at term 1 (older terms are superseded)");
    REQUIRE(t.seen(termed("possync-42-s1", "s1", "10.231.0.12", 1), 3000));  // back, at another address
    CHECK(t.choose()->endpoint() == "10.231.0.12:7700");
}

TEST_CASE("candidate table: two boards promoted at once: the lowest device id wins, everywhere the same") {
    CandidateTable t("42", POSSYNC_PROTOCOL_VERSION);
    REQUIRE(t.seen(termed("possync-42-s2", "s2", "10.231.0.12", 2), 1000));
    REQUIRE(t.seen(termed("possync-42-s1", "s1", "10.231.0.11", 2), 2000));
    CHECK(t.state() == FinderState::Found);
    CHECK(t.choose()->deviceId == "s1");
    CHECK(t.tieText() ==
          "2 boards claim term 2 of store 42: s1 at 10.231.0.11:7700, s2 at 10.231.0.12:7700; s1 wins "
          "(lowest device id)");
    // Seen in the other order, another board decides the same.
    CandidateTable u("42", POSSYNC_PROTOCOL_VERSION);
    REQUIRE(u.seen(termed("possync-42-s1", "s1", "10.231.0.11", 2), 1000));
    REQUIRE(u.seen(termed("possync-42-s2", "s2", "10.231.0.12", 2), 2000));
    CHECK(u.choose()->deviceId == "s1");
    // A third promotion of the loser, at term 3, ends the tie.
    REQUIRE(t.seen(termed("possync-42-s2", "s2", "10.231.0.12", 3), 3000));
    CHECK(t.choose()->deviceId == "s2");
    CHECK(t.tieText().empty());
    // Two masters at term 0 stay a conflict: nothing is chosen.
    CandidateTable v("42", POSSYNC_PROTOCOL_VERSION);
    REQUIRE(v.seen(sighting("a", "42", "a", "10.0.0.1"), 1000));
    REQUIRE(v.seen(sighting("b", "42", "b", "10.0.0.2"), 1000));
    CHECK(v.state() == FinderState::Conflict);
    CHECK(v.tieText().empty());
}

TEST_CASE("master finder: a raised floor re-decides and is shown by `discovery`") {
    auto f = MasterFinder::createInjected("42");
    REQUIRE(f.ok());
    int changes = 0;
    (*f)->setChangeCallback([&](const Change&) { ++changes; });
    (*f)->inject(sighting("possync-42-old", "42", "old", "10.231.0.10"));
    CHECK(changes == 1);
    REQUIRE((*f)->choose().ok());
    (*f)->setMinTerm(1);  // this board learnt of term 1 (a Welcome, its store)
    CHECK(changes == 2);  // the replica looks again
    CHECK_FALSE((*f)->choose().ok());
    (*f)->setMinTerm(1);  // not higher: nothing happens
    CHECK(changes == 2);
    (*f)->inject(termed("possync-42-s1", "s1", "10.231.0.11", 1));
    (*f)->injectAllForNow();
    std::string text = formatSnapshot((*f)->snapshot(), 0);
    CHECK(text.find("store 42: found, term 1\n") != std::string::npos);
    CHECK(text.find("dev=s1 at 10.231.0.11:7700 (h.local) gen=00000000000000aa term=1") != std::string::npos);
    CHECK(text.find("ignored \"possync-42-old\" at 10.231.0.10:7700: term 0, superseded by term 1") !=
          std::string::npos);
}

TEST_CASE("master finder: injected sightings drive change and state callbacks and a conflict warning") {
    auto made = MasterFinder::createInjected("42");
    REQUIRE(made.ok());
    MasterFinder& f = **made;
    uint64_t now = 1000;
    f.setClock([&] { return now; });
    std::vector<std::string> changes;
    std::vector<FinderState> states;
    f.setChangeCallback([&](const Change& c) {
        changes.push_back(std::string(changeKindName(c.kind)) + " " + c.candidate.deviceId);
    });
    f.setStateCallback([&](FinderState s) { states.push_back(s); });
    std::vector<std::string> warnings;
    int sink = log::addSink([&](const log::Line& l) {
        if (l.level == log::Level::Warning) warnings.push_back(l.text);
    });

    f.inject(sighting("possync-7-devC", "7", "devC", "10.0.0.3"));
    CHECK(changes.empty());
    f.inject(sighting("possync-42-devA", "42", "devA", "10.231.0.10"));
    now = 2000;
    f.inject(sighting("possync-42-devB", "42", "devB", "10.231.0.11"));
    f.inject(sighting("possync-42-devB", "42", "devB", "10.231.0.11"));  // no change
    f.injectAllForNow();
    CHECK(changes == std::vector<std::string>{"added devA", "added devB"});
    CHECK(states == std::vector<FinderState>{FinderState::Found, FinderState::Conflict});
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0] ==
          "2 boards claim master for store 42: devA at 10.231.0.10:7700, devB at 10.231.0.11:7700");
    CHECK_FALSE(f.choose().ok());

    auto snap = f.snapshot();
    CHECK(snap.state == FinderState::Conflict);
    CHECK(snap.candidates.size() == 2);
    CHECK(snap.ignored.size() == 1);
    CHECK(snap.initialScanDone);
    std::string text = formatSnapshot(snap, 4000);
    CHECK(text.find("discovery injected") == 0);
    CHECK(text.find("master \"possync-42-devA\" dev=devA at 10.231.0.10:7700 (h.local) gen=00000000000000aa "
                    "seen 3 s ago") != std::string::npos);
    CHECK(text.find("ignored \"possync-7-devC\" at 10.0.0.3:7700: store 7") != std::string::npos);
    CHECK(text.find("CONFLICT: 2 boards claim master for store 42") != std::string::npos);

    f.injectGone("possync-42-devA");
    CHECK(states.back() == FinderState::Found);
    REQUIRE(f.choose().ok());
    CHECK(f.choose()->deviceId == "devB");
    f.injectGone("possync-42-devB");
    CHECK(states.back() == FinderState::Searching);
    CHECK(changes.size() == 4);
    log::removeSink(sink);
}

TEST_CASE("master finder: static mode has one candidate that never goes away") {
    auto made = MasterFinder::createStatic("42", "10.0.0.5:7700");
    REQUIRE(made.ok());
    MasterFinder& f = **made;
    CHECK(f.mode() == DiscoveryMode::Static);
    CHECK(f.state() == FinderState::Found);
    auto c = f.choose();
    REQUIRE(c.ok());
    CHECK(c->isStatic);
    CHECK(c->endpoint() == "10.0.0.5:7700");
    f.injectGone("");
    f.inject(sighting("possync-42-devB", "42", "devB", "10.231.0.11"));
    CHECK(f.candidates().size() == 1);
    CHECK(formatSnapshot(f.snapshot(), 0).find("discovery static: static 10.0.0.5:7700; store 42: found") ==
          0);

    CHECK_FALSE(MasterFinder::createStatic("42", "nohost").ok());
    CHECK_FALSE(MasterFinder::createStatic("", "h:1").ok());
}

TEST_CASE("master finder: modes from the command line") {
    CHECK(parseDiscoveryMode("avahi").value() == DiscoveryMode::Avahi);
    CHECK(parseDiscoveryMode("static").value() == DiscoveryMode::Static);
    CHECK(parseDiscoveryMode("mdns").error().message.find("avahi or static") != std::string::npos);
    CHECK(MasterFinder::create(nullptr, DiscoveryMode::Static, "42", "").error().message.find("--master") !=
          std::string::npos);
    CHECK(MasterFinder::create(nullptr, DiscoveryMode::Avahi, "42", "h:1").error().code ==
          Errc::InvalidArgument);
    CHECK(MasterFinder::create(nullptr, DiscoveryMode::Static, "42", "h:1").ok());
}

#if POSSYNC_DISCOVERY_AVAHI
TEST_CASE("master finder and advertiser with Avahi but no bus: created, waiting, closed cleanly") {
    setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/possync-test/bus", 1);
    uv_loop_t loop;
    REQUIRE(uv_loop_init(&loop) == 0);
    {
        auto f = MasterFinder::createAvahi(&loop, "42");
        REQUIRE(f.ok());
        CHECK((*f)->state() == FinderState::Searching);
        CHECK((*f)->choose().error().code == Errc::NotFound);
        CHECK((*f)->snapshot().source.find("avahi connecting") == 0);

        auto a = Advertiser::create(&loop, AdvertiserOptions{"42", "devA", 7700, 0xabc, ""});
        REQUIRE(a.ok());
        CHECK((*a)->state() == AdvertiserState::Waiting);
        CHECK((*a)->serviceName() == "possync-42-devA");
        CHECK((*a)->setPort(7701).ok());
        CHECK_FALSE((*a)->setPort(0).ok());
        (*a)->setGeneration(0xdef);
        CHECK(
            (*a)->describe().find("advertising \"possync-42-devA\" _possync._tcp port 7701 store=42 dev=devA "
                                  "gen=0000000000000def term=0: waiting-for-avahi (avahi connecting)") == 0);
        CHECK_FALSE(Advertiser::create(&loop, AdvertiserOptions{"42", "", 7700, 0, ""}).ok());
        CHECK_FALSE(Advertiser::create(&loop, AdvertiserOptions{"42", "d", 0, 0, ""}).ok());
    }
    for (int i = 0; i < 10 && uv_loop_alive(&loop); ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(uv_loop_close(&loop) == 0);
    unsetenv("DBUS_SYSTEM_BUS_ADDRESS");
}
#else
TEST_CASE("without Avahi: avahi mode and advertising fail with a clear error, static mode works") {
    auto f = MasterFinder::createAvahi(nullptr, "42");
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == Errc::Refused);
    CHECK(f.error().message.find("without Avahi") != std::string::npos);
    auto a = Advertiser::create(nullptr, AdvertiserOptions{"42", "devA", 7700, 1, ""});
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().message.find("without Avahi") != std::string::npos);
    CHECK(MasterFinder::createStatic("42", "10.0.0.5:7700").ok());
}
#endif

TEST_CASE(
    "announcement: key= carries the master's key fingerprint; absent on older boards; a bad one is refused") {
    Announcement a{"42", "devA", 5, 0xabcULL, 2, "4f1c9a20b7d3e865"};
    auto txt = makeTxt(a);
    REQUIRE(txt.size() == 6);
    CHECK(txt[5] == std::pair<std::string, std::string>{"key", "4f1c9a20b7d3e865"});
    auto back = parseAnnouncement({txt.begin(), txt.end()});
    REQUIRE(back.ok());
    CHECK(back->keyFingerprint == "4f1c9a20b7d3e865");
    CHECK(parseAnnouncement({{"store", "42"}, {"dev", "d"}, {"proto", "4"}})->keyFingerprint.empty());
    for (const char* bad :
         {"", "4f1c9a20b7d3e86", "4f1c9a20b7d3e8650", "4F1C9A20B7D3E865", "4f1c9a20b7d3e86g"}) {
        CAPTURE(bad);
        auto r = parseAnnouncement({{"store", "42"}, {"dev", "d"}, {"proto", "5"}, {"key", bad}});
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("key fingerprint") != std::string::npos);
    }
}
