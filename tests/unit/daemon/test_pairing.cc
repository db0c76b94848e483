// PairingDesk and HandshakeGuard (daemon/pairing.h): the master's pairing bookkeeping and the
// rate limit on failed handshakes, driven with explicit times.
#include <doctest/doctest.h>

#include "daemon/pairing.h"
#include "trust/identity.h"

using namespace possync;
using namespace possync::daemon;

namespace {
trust::PublicKey keyFrom(uint8_t b) {
    std::array<uint8_t, 32> seed{};
    seed.fill(b);
    return trust::Identity::fromSeed(seed).publicKey();
}
}  // namespace

TEST_CASE("a pairing request is recorded once, renamed by its Hello, found by device or fingerprint prefix") {
    REQUIRE(trust::initSodium());
    const trust::PublicKey master = keyFrom(1), a = keyFrom(2), b = keyFrom(3);
    PairingDesk desk(master);
    CHECK(desk.noteCandidate(a, "10.0.0.2:5000", 1000));
    CHECK_FALSE(desk.noteCandidate(a, "10.0.0.2:5001", 2000));  // a retry renews, logs nothing
    CHECK(desk.noteCandidate(b, "10.0.0.3:5000", 2000));
    auto list = desk.pending(3000);
    REQUIRE(list.size() == 2);
    CHECK(list[0].attempts == 2);
    CHECK(list[0].address == "10.0.0.2:5001");
    CHECK(list[0].code == trust::verificationCode(master, a));
    CHECK(list[0].name() == trust::fingerprint(a));  // no Hello yet
    desk.noteHello(a, "kds-1");
    CHECK(desk.pending(3000)[0].name() == "kds-1");

    auto byDevice = desk.find("kds-1", 3000);
    REQUIRE(byDevice);
    CHECK(byDevice->key == a);
    auto byPrefix = desk.find(trust::fingerprint(b).substr(0, 6), 3000);
    REQUIRE(byPrefix);
    CHECK(byPrefix->key == b);
    CHECK(desk.find("nobody", 3000).error().code == Errc::NotFound);
    CHECK(desk.find("ab", 3000).error().code == Errc::NotFound);  // too short to be a prefix

    // Not renewed for the TTL: forgotten.
    CHECK(desk.pending(2000 + kPendingTtlMs).size() == 0);
}

TEST_CASE("a rejected key stays refused for a while; the window has an end") {
    REQUIRE(trust::initSodium());
    PairingDesk desk(keyFrom(1));
    const trust::PublicKey a = keyFrom(2);
    desk.noteCandidate(a, "h:1", 0);
    desk.reject(a, 100);
    CHECK(desk.pending(200).empty());
    CHECK(desk.rejected(a, 200));
    CHECK_FALSE(desk.rejected(a, 100 + kRejectedMs));
    CHECK(desk.windowLeftMs(0) == 0);
    desk.openWindow(60000);
    CHECK(desk.windowLeftMs(1000) == 59000);
    CHECK(desk.windowLeftMs(60000) == 0);
    desk.openWindow(60000);
    desk.closeWindow();
    CHECK(desk.windowLeftMs(1000) == 0);
    desk.noteLegacy("10.0.0.9", 10);
    REQUIRE(desk.legacy(20).size() == 1);
    CHECK(desk.legacy(20)[0].first == "10.0.0.9");
}

TEST_CASE("pending requests are bounded: a stranger cycling keys cannot grow them") {
    REQUIRE(trust::initSodium());
    PairingDesk desk(keyFrom(1));
    for (int i = 0; i < int(kMaxPending) + 10; ++i)
        desk.noteCandidate(keyFrom(uint8_t(10 + i)), "h:1", uint64_t(i));
    CHECK(desk.pending(100).size() == kMaxPending);
}

TEST_CASE("failed handshakes: a burst from one address is throttled and reported, others are not") {
    HandshakeGuard guard;
    uint64_t reported = 0;
    int admitted = 0;
    for (int i = 0; i < 200; ++i) {
        if (guard.admit("10.0.0.66", 1000)) {
            ++admitted;
            reported += guard.failed("10.0.0.66", 1000);
        }
    }
    CHECK(admitted == int(kFailureBurst));  // then no token left: closed before any handshake
    CHECK(reported == 1);                   // the first failure of the burst, not one line each
    CHECK(guard.blocked() == 200 - kFailureBurst);
    CHECK(guard.admit("10.0.0.7", 1000));  // another board is not affected
    // A second later a few tokens are back: a board there retrying with a good key gets in.
    CHECK(guard.admit("10.0.0.66", 2000));
    // After kLogEveryMs the failures since the last report are counted in one line.
    for (int i = 0; i < 3; ++i) guard.failed("10.0.0.66", 2000);
    CHECK(guard.failed("10.0.0.66", 1000 + kLogEveryMs) == kFailureBurst - 1 + 3 + 1);
}
