// The link handshake as a state machine driven by scripted messages: a good run gives both sides
// working streams and each other's key; every refusal, every altered byte of every message, a
// message in the wrong state, a replayed message and a key-swapping relay fail it, and a failed
// handshake accepts nothing more.
#include <doctest/doctest.h>

#include <cstring>
#include <string>
#include <vector>

#include "trust/handshake.h"
#include "trust/identity.h"

using namespace possync;
using namespace possync::trust;

namespace {

using State = Handshake::State;

// A PeerCheck that admits exactly `member` (and records what it was asked).
struct Check {
    PublicKey member{};
    PeerStanding standing = PeerStanding::Member;
    int calls = 0;
    uint32_t lastFlags = 0;
    PeerCheck fn() {
        return [this](const PublicKey& peer, uint32_t flags) -> Result<PeerStanding> {
            ++calls;
            lastFlags = flags;
            if (peer != member) return makeError(Errc::Refused, "not a member of this store");
            return standing;
        };
    }
};

struct Pair {
    Identity slave = Identity::generate();
    Identity master = Identity::generate();
    Check slaveCheck, masterCheck;
    Pair() {
        slaveCheck.member = master.publicKey();
        masterCheck.member = slave.publicKey();
    }
    Handshake initiator(uint32_t flags = 0) { return Handshake::initiator(slave, slaveCheck.fn(), flags); }
    Handshake responder() { return Handshake::responder(master, masterCheck.fn()); }
};

std::vector<uint8_t> must(Result<std::vector<uint8_t>> r) {
    REQUIRE(r.ok());
    return std::move(r).value();
}

Bytes bytesOf(const std::vector<uint8_t>& v) {
    return Bytes(v.data(), v.size());
}

// Both directions of two finished handshakes carry records.
void checkStreams(Handshake& a, Handshake& b) {
    auto sa = a.takeStreams(), sb = b.takeStreams();
    REQUIRE(sa.send);
    REQUIRE(sa.receive);
    REQUIRE(sb.send);
    REQUIRE(sb.receive);
    for (int i = 0; i < 3; ++i) {
        std::vector<uint8_t> rec, out;
        sa.send->seal(Bytes("hello " + std::to_string(i)), rec);
        REQUIRE(sb.receive->open(bytesOf(rec), out).ok());
        CHECK(std::string(out.begin(), out.end()) == "hello " + std::to_string(i));
        rec.clear();
        sb.send->seal(Bytes("welcome"), rec);
        REQUIRE(sa.receive->open(bytesOf(rec), out).ok());
        CHECK(std::string(out.begin(), out.end()) == "welcome");
    }
    CHECK_FALSE(a.takeStreams().send);  // handed out once
}

}  // namespace

TEST_CASE("a good handshake: three messages, each side learns the other's key, both streams work") {
    REQUIRE(initSodium().ok());
    Pair p;
    Handshake i = p.initiator(), r = p.responder();
    CHECK(i.state() == State::Start);
    CHECK(r.state() == State::AwaitM1);
    auto m1 = i.start();
    CHECK(m1.size() == kM1Bytes);
    CHECK(i.state() == State::AwaitM2);
    auto m2 = must(r.receive(bytesOf(m1)));
    CHECK(m2.size() == kM2Bytes);
    CHECK(r.state() == State::AwaitM3);
    auto m3 = must(i.receive(bytesOf(m2)));
    CHECK(m3.size() == kM3Bytes);
    CHECK(i.state() == State::Done);
    auto none = must(r.receive(bytesOf(m3)));
    CHECK(none.empty());
    CHECK(r.state() == State::Done);
    REQUIRE(i.peerKey());
    REQUIRE(r.peerKey());
    CHECK(*i.peerKey() == p.master.publicKey());
    CHECK(*r.peerKey() == p.slave.publicKey());
    CHECK(p.slaveCheck.calls == 1);
    CHECK(p.masterCheck.calls == 1);
    checkStreams(i, r);
}

TEST_CASE("a pairing request carries its flag to the responder's check, which may admit a candidate") {
    REQUIRE(initSodium().ok());
    Pair p;
    p.masterCheck.standing = PeerStanding::Candidate;
    Handshake i = p.initiator(kFlagPairing), r = p.responder();
    auto m2 = must(r.receive(bytesOf(i.start())));
    CHECK(p.masterCheck.lastFlags == kFlagPairing);
    CHECK(r.standing() == PeerStanding::Candidate);
    CHECK(r.flags() == kFlagPairing);
    auto m3 = must(i.receive(bytesOf(m2)));
    must(r.receive(bytesOf(m3)));
    CHECK(r.state() == State::Done);
}

TEST_CASE("a stranger is refused by the responder before it signs anything") {
    REQUIRE(initSodium().ok());
    Pair p;
    Identity stranger = Identity::generate();
    Check strangerCheck;
    strangerCheck.member = p.master.publicKey();
    Handshake i = Handshake::initiator(stranger, strangerCheck.fn()), r = p.responder();
    auto m2 = r.receive(bytesOf(i.start()));
    REQUIRE_FALSE(m2.ok());
    CHECK(m2.error().code == Errc::Refused);
    CHECK(m2.error().message.find("not a member") != std::string::npos);
    CHECK(r.state() == State::Failed);
    CHECK_FALSE(r.takeStreams().send);
}

TEST_CASE("a slave refuses a master whose key it does not trust (a rogue master with the right store id)") {
    REQUIRE(initSodium().ok());
    Pair p;
    Identity rogue = Identity::generate();
    Check rogueCheck;
    rogueCheck.member = p.slave.publicKey();  // the rogue would accept the slave
    Handshake i = p.initiator(), r = Handshake::responder(rogue, rogueCheck.fn());
    auto m2 = must(r.receive(bytesOf(i.start())));
    auto m3 = i.receive(bytesOf(m2));
    REQUIRE_FALSE(m3.ok());
    CHECK(m3.error().code == Errc::Refused);
    CHECK(i.state() == State::Failed);
}

TEST_CASE("a peer presenting this board's own key is refused") {
    REQUIRE(initSodium().ok());
    Identity self = Identity::generate();
    auto any = [](const PublicKey&, uint32_t) -> Result<PeerStanding> { return PeerStanding::Member; };
    Handshake i = Handshake::initiator(self, any), r = Handshake::responder(self, any);
    auto m2 = r.receive(bytesOf(i.start()));
    REQUIRE_FALSE(m2.ok());
    CHECK(m2.error().code == Errc::Refused);
}

TEST_CASE("M1 of the wrong size, magic, version or flags is refused") {
    REQUIRE(initSodium().ok());
    Pair p;
    auto m1 = p.initiator().start();
    struct Case {
        const char* what;
        std::vector<uint8_t> bytes;
        Errc code;
    };
    std::vector<Case> cases;
    cases.push_back({"empty", {}, Errc::Protocol});
    cases.push_back({"short", std::vector<uint8_t>(m1.begin(), m1.end() - 1), Errc::Protocol});
    auto longer = m1;
    longer.push_back(0);
    cases.push_back({"long", longer, Errc::Protocol});
    auto magic = m1;
    magic[0] = 'X';
    cases.push_back({"magic", magic, Errc::Protocol});
    auto version = m1;
    version[2] = 2;
    cases.push_back({"version", version, Errc::Version});
    auto flags = m1;
    flags[5] = 1;
    cases.push_back({"flags", flags, Errc::Protocol});
    // A plaintext frame of an older board: a 16-byte frame header, then FlatBuffers.
    cases.push_back({"plaintext frame", std::vector<uint8_t>(72, 0), Errc::Protocol});
    for (auto& c : cases) {
        CAPTURE(c.what);
        Handshake r = p.responder();
        auto out = r.receive(bytesOf(c.bytes));
        REQUIRE_FALSE(out.ok());
        CHECK(out.error().code == c.code);
        CHECK(r.state() == State::Failed);
    }
    CHECK(p.masterCheck.calls == 0);  // refused before the key was even looked at
}

TEST_CASE("every altered byte of M1, M2 or M3 in transit fails the handshake on one side") {
    REQUIRE(initSodium().ok());
    Pair p;
    // M1: the responder cannot tell (nothing of M1 is signed yet), but the initiator then
    // finds the responder's signature over a different M1, or the responder refuses the key.
    for (size_t at = 0; at < kM1Bytes; ++at) {
        CAPTURE(at);
        Handshake i = p.initiator(), r = p.responder();
        auto m1 = i.start();
        m1[at] ^= 0x01;
        auto m2 = r.receive(bytesOf(m1));
        if (!m2.ok()) continue;  // refused at once: magic, unknown flags, a key that is not a member
        auto m3 = i.receive(bytesOf(*m2));
        CHECK_FALSE(m3.ok());
        CHECK(i.state() == State::Failed);
    }
    for (size_t at = 0; at < kM2Bytes; ++at) {
        CAPTURE(at);
        Handshake i = p.initiator(), r = p.responder();
        auto m2 = must(r.receive(bytesOf(i.start())));
        m2[at] ^= 0x80;
        auto m3 = i.receive(bytesOf(m2));
        CHECK_FALSE(m3.ok());
        CHECK(i.state() == State::Failed);
    }
    for (size_t at = 0; at < kM3Bytes; ++at) {
        CAPTURE(at);
        Handshake i = p.initiator(), r = p.responder();
        auto m2 = must(r.receive(bytesOf(i.start())));
        auto m3 = must(i.receive(bytesOf(m2)));
        m3[at] ^= 0x04;
        auto done = r.receive(bytesOf(m3));
        CHECK_FALSE(done.ok());
        CHECK(r.state() == State::Failed);
    }
}

TEST_CASE("recorded messages replayed into a new handshake fail") {
    REQUIRE(initSodium().ok());
    Pair p;
    Handshake i1 = p.initiator(), r1 = p.responder();
    auto m1 = i1.start();
    auto m2 = must(r1.receive(bytesOf(m1)));
    auto m3 = must(i1.receive(bytesOf(m2)));
    must(r1.receive(bytesOf(m3)));
    // A recorder replays the slave's M1 and M3 to the master: the master's new ephemeral key
    // changes the transcript, so the recorded signature does not match.
    Handshake r2 = p.responder();
    must(r2.receive(bytesOf(m1)));
    auto replayed = r2.receive(bytesOf(m3));
    REQUIRE_FALSE(replayed.ok());
    CHECK(replayed.error().code == Errc::Corrupt);
    // ... and replays the master's M2 to the slave's new handshake.
    Handshake i2 = p.initiator();
    i2.start();
    auto stale = i2.receive(bytesOf(m2));
    REQUIRE_FALSE(stale.ok());
    CHECK(stale.error().code == Errc::Corrupt);
}

TEST_CASE("a relay that swaps in its own keys cannot complete either side") {
    REQUIRE(initSodium().ok());
    Pair p;
    Identity mallory = Identity::generate();
    // Mallory is trusted by neither side; she forwards the slave's M1 with her own ephemeral key.
    auto any = [](const PublicKey&, uint32_t) -> Result<PeerStanding> { return PeerStanding::Member; };
    Handshake i = p.initiator(), r = p.responder();
    Handshake fakeSlave = Handshake::initiator(mallory, any);
    auto m1 = i.start();
    auto mine = fakeSlave.start();
    std::memcpy(m1.data() + 8, mine.data() + 8, 32);  // her ephemeral key, the slave's long-term key
    auto m2 = must(r.receive(bytesOf(m1)));
    // The master signed a transcript with Mallory's ephemeral key: the slave sees a different one.
    CHECK_FALSE(i.receive(bytesOf(m2)).ok());
    // Mallory cannot finish with the master either: M3 needs the slave's signature.
    CHECK_FALSE(fakeSlave.receive(bytesOf(m2)).ok());
}

TEST_CASE("messages in the wrong state fail, and a failed or finished handshake accepts nothing") {
    REQUIRE(initSodium().ok());
    Pair p;
    SUBCASE("initiator before start") {
        Handshake i = p.initiator();
        CHECK(i.receive(Bytes("x")).error().code == Errc::Protocol);
        CHECK(i.state() == State::Failed);
        CHECK(i.start().empty());
    }
    SUBCASE("responder given M3 first, or M2") {
        Handshake i = p.initiator(), r = p.responder();
        auto m2 = must(r.receive(bytesOf(i.start())));
        auto m3 = must(i.receive(bytesOf(m2)));
        Handshake fresh = p.responder();
        CHECK_FALSE(fresh.receive(bytesOf(m3)).ok());
        Handshake fresh2 = p.responder();
        CHECK_FALSE(fresh2.receive(bytesOf(m2)).ok());
    }
    SUBCASE("initiator given M1 back (a reflection)") {
        Handshake i = p.initiator();
        auto m1 = i.start();
        CHECK(i.receive(bytesOf(m1)).error().code == Errc::Protocol);
    }
    SUBCASE("after done") {
        Handshake i = p.initiator(), r = p.responder();
        auto m2 = must(r.receive(bytesOf(i.start())));
        auto m3 = must(i.receive(bytesOf(m2)));
        must(r.receive(bytesOf(m3)));
        CHECK(r.receive(bytesOf(m3)).error().code == Errc::Protocol);
        CHECK(i.receive(bytesOf(m2)).error().code == Errc::Protocol);
        CHECK(r.state() == State::Failed);
    }
    SUBCASE("after a failure") {
        Handshake r = p.responder();
        CHECK_FALSE(r.receive(Bytes("junk")).ok());
        Handshake i = p.initiator();
        auto again = r.receive(bytesOf(i.start()));
        REQUIRE_FALSE(again.ok());
        CHECK(again.error().message.find("failed before") != std::string::npos);
    }
}
