// SecureLink over scripted links: the handshake runs first, frames sent meanwhile are held and
// then sealed; the bytes on the wire hold none of the frames' text; a refused key, a flipped
// bit, a replayed, dropped or reordered record, an oversized record and a peer that leaves
// during the handshake each end the link with an error before the session sees a byte of it.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "fixture.h"
#include "sync/secure_link.h"
#include "trust/handshake.h"
#include "trust/identity.h"

using namespace possync;
using namespace possync::test;
using possync::sync::SecureLink;
using possync::trust::Handshake;
using possync::trust::Identity;
using possync::trust::PeerStanding;
using possync::trust::PublicKey;

namespace {

// What a session would see.
struct Events final : sync::LinkEvents {
    std::vector<uint8_t> received;
    int dataCalls = 0;
    bool closed = false;
    Status status;
    void onData(Bytes d) override {
        ++dataCalls;
        received.insert(received.end(), d.data, d.data + d.size);
    }
    void onClosed(Status st) override {
        closed = true;
        status = std::move(st);
    }
    std::string text() const { return std::string(received.begin(), received.end()); }
};

trust::PeerCheck admit(const PublicKey& member) {
    return [member](const PublicKey& peer, uint32_t) -> Result<PeerStanding> {
        if (peer != member) return makeError(Errc::Refused, "not in this store's trust set");
        return PeerStanding::Member;
    };
}

// A slave-side and a master-side SecureLink over two scripted links; pump() carries bytes.
struct Wire {
    Identity slaveId = Identity::generate(), masterId = Identity::generate();
    std::shared_ptr<LinkProbe> slaveProbe = std::make_shared<LinkProbe>();
    std::shared_ptr<LinkProbe> masterProbe = std::make_shared<LinkProbe>();
    std::unique_ptr<SecureLink> slave, master;
    Events slaveEvents, masterEvents;
    std::vector<uint8_t> captured;  // every byte that crossed, both ways

    explicit Wire(bool masterTrustsSlave = true, uint32_t maxFrame = 1 << 20) {
        REQUIRE(trust::initSodium().ok());
        PublicKey slaveMember = masterTrustsSlave ? slaveId.publicKey() : PublicKey{};
        slave = std::make_unique<SecureLink>(std::make_unique<ScriptedLink>(slaveProbe),
                                             Handshake::initiator(slaveId, admit(masterId.publicKey())),
                                             maxFrame);
        master = std::make_unique<SecureLink>(std::make_unique<ScriptedLink>(masterProbe),
                                              Handshake::responder(masterId, admit(slaveMember)), maxFrame);
        REQUIRE(master->start(masterEvents).ok());
        REQUIRE(slave->start(slaveEvents).ok());
    }
    // Delivers what each side sent to the other until nothing moves.
    void pump() {
        for (int round = 0; round < 10; ++round) {
            auto toMaster = slaveProbe->take();
            auto toSlave = masterProbe->take();
            if (toMaster.empty() && toSlave.empty()) return;
            captured.insert(captured.end(), toMaster.begin(), toMaster.end());
            captured.insert(captured.end(), toSlave.begin(), toSlave.end());
            if (!toMaster.empty() && masterProbe->events)
                masterProbe->events->onData(Bytes(toMaster.data(), toMaster.size()));
            if (!toSlave.empty() && slaveProbe->events)
                slaveProbe->events->onData(Bytes(toSlave.data(), toSlave.size()));
        }
    }
    bool sawOnWire(const std::string& text) const {
        return std::search(captured.begin(), captured.end(), text.begin(), text.end()) != captured.end();
    }
};

std::vector<uint8_t> bytesOf(const std::string& s) {
    return std::vector<uint8_t>(s.begin(), s.end());
}

// Records (length-prefixed payloads) in a captured byte run.
std::vector<std::vector<uint8_t>> records(const std::vector<uint8_t>& bytes) {
    std::vector<std::vector<uint8_t>> out;
    size_t at = 0;
    while (at + 4 <= bytes.size()) {
        uint32_t n = getLe32(bytes.data() + at);
        REQUIRE(at + 4 + n <= bytes.size());
        out.emplace_back(bytes.begin() + static_cast<std::ptrdiff_t>(at),
                         bytes.begin() + static_cast<std::ptrdiff_t>(at + 4 + n));
        at += 4 + n;
    }
    return out;
}

// A wire whose handshake is done, with the slave's side of the stream left to the test.
struct Ready : Wire {
    Ready() {
        pump();
        REQUIRE(slave->authenticated());
        REQUIRE(master->authenticated());
    }
};

}  // namespace

TEST_CASE("frames sent during the handshake are held, then sealed; the wire shows none of their text") {
    Wire w;
    REQUIRE(w.slave->send(bytesOf("Hello store=shop tables=orders")).ok());
    CHECK(w.slave->queuedBytes() >= 30);
    CHECK(w.slaveProbe->sent.size() == 4 + trust::kM1Bytes);  // only M1 went out
    w.pump();
    CHECK(w.slave->authenticated());
    CHECK(w.master->authenticated());
    REQUIRE(w.master->peerKey());
    CHECK(*w.master->peerKey() == w.slaveId.publicKey());
    CHECK(*w.slave->peerKey() == w.masterId.publicKey());
    CHECK(w.masterEvents.text() == "Hello store=shop tables=orders");

    REQUIRE(w.master->send(bytesOf("Welcome espresso 2.40")).ok());
    std::vector<std::vector<uint8_t>> two{bytesOf("Change orders/17=latte"), bytesOf("Change stock/milk=11")};
    REQUIRE(w.master->sendv(two).ok());
    auto shared = std::make_shared<const std::vector<uint8_t>>(bytesOf("Chunk menu/cappuccino=3.10"));
    REQUIRE(w.master->sendShared(shared).ok());
    w.pump();
    CHECK(w.slaveEvents.text() ==
          "Welcome espresso 2.40Change orders/17=latteChange stock/milk=11Chunk menu/cappuccino=3.10");
    CHECK(w.slaveEvents.dataCalls == 1);  // the four records came in one read: one call
    for (const char* secret :
         {"shop", "orders", "espresso", "latte", "milk", "cappuccino", "Hello", "Welcome"}) {
        CAPTURE(secret);
        CHECK_FALSE(w.sawOnWire(secret));
    }
    CHECK(w.slave->sealedBytes() == 30);
    CHECK(w.master->openedBytes() == 30);
}

TEST_CASE("a master that does not trust the slave's key sends nothing after refusing M1") {
    Wire w(false);
    REQUIRE(w.slave->send(bytesOf("Hello store=shop")).ok());
    w.pump();
    CHECK(w.masterEvents.closed);
    CHECK(w.masterEvents.status.error().code == Errc::Refused);
    CHECK(w.masterEvents.received.empty());
    CHECK(w.masterProbe->closed);
    CHECK_FALSE(w.slave->authenticated());
    CHECK(w.captured.size() == 4 + trust::kM1Bytes);  // M1, and nothing back
    // The scripted transport does not report the close; a real one would, as an error:
    w.slaveProbe->events->onClosed(Status());
    CHECK(w.slaveEvents.closed);
    CHECK(w.slaveEvents.status.error().code == Errc::Closed);
}

TEST_CASE("a flipped bit in any sealed record ends the link before the session sees it") {
    for (size_t bit = 0; bit < (4 + 5 + trust::kSealBytes) * 8; bit += 3) {
        CAPTURE(bit);
        Ready w;
        REQUIRE(w.slave->send(bytesOf("put 1")).ok());
        auto bytes = w.slaveProbe->take();
        bytes[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        w.masterProbe->events->onData(Bytes(bytes.data(), bytes.size()));
        CHECK(w.masterEvents.dataCalls == 0);
        // A flipped length bit may leave the record incomplete (the link then waits for bytes
        // that never come: the session's heartbeat timeout ends it) or over the limit.
        if (w.masterEvents.closed) {
            CHECK_FALSE(w.masterEvents.status.ok());
            CHECK(w.masterProbe->closed);
        } else {
            CHECK(bit < 32);
        }
    }
}

TEST_CASE("a replayed, dropped or reordered record ends the link; nothing out of order is delivered") {
    SUBCASE("replayed") {
        Ready w;
        REQUIRE(w.slave->send(bytesOf("put 1")).ok());
        auto rec = w.slaveProbe->take();
        w.masterProbe->events->onData(Bytes(rec.data(), rec.size()));
        CHECK(w.masterEvents.text() == "put 1");
        w.masterProbe->events->onData(Bytes(rec.data(), rec.size()));
        CHECK(w.masterEvents.closed);
        CHECK(w.masterEvents.status.error().code == Errc::Corrupt);
        CHECK(w.masterEvents.text() == "put 1");
    }
    SUBCASE("dropped") {
        Ready w;
        REQUIRE(w.slave->send(bytesOf("put 1")).ok());
        w.slaveProbe->take();
        REQUIRE(w.slave->send(bytesOf("put 2")).ok());
        auto second = w.slaveProbe->take();
        w.masterProbe->events->onData(Bytes(second.data(), second.size()));
        CHECK(w.masterEvents.closed);
        CHECK(w.masterEvents.received.empty());
    }
    SUBCASE("reordered") {
        Ready w;
        REQUIRE(w.slave->send(bytesOf("put 1")).ok());
        REQUIRE(w.slave->send(bytesOf("put 2")).ok());
        auto recs = records(w.slaveProbe->take());
        REQUIRE(recs.size() == 2);
        std::vector<uint8_t> swapped = recs[1];
        swapped.insert(swapped.end(), recs[0].begin(), recs[0].end());
        w.masterProbe->events->onData(Bytes(swapped.data(), swapped.size()));
        CHECK(w.masterEvents.closed);
        CHECK(w.masterEvents.received.empty());
    }
    SUBCASE("cut short, then the peer leaves") {
        Ready w;
        REQUIRE(w.slave->send(bytesOf("put 1")).ok());
        auto rec = w.slaveProbe->take();
        w.masterProbe->events->onData(Bytes(rec.data(), rec.size() - 1));
        CHECK_FALSE(w.masterEvents.closed);
        w.masterProbe->events->onClosed(Status());
        CHECK(w.masterEvents.closed);
        CHECK(w.masterEvents.received.empty());
    }
}

TEST_CASE("records arrive in any split of the stream") {
    Ready w;
    std::string big(200000, 'z');
    REQUIRE(w.slave->send(bytesOf("put 1")).ok());
    REQUIRE(w.slave->send(bytesOf(big)).ok());
    REQUIRE(w.slave->send(bytesOf("put 3")).ok());
    auto bytes = w.slaveProbe->take();
    for (size_t at = 0; at < bytes.size();) {
        size_t n = std::min<size_t>(1 + (at % 7919), bytes.size() - at);
        w.masterProbe->events->onData(Bytes(bytes.data() + at, n));
        at += n;
    }
    CHECK_FALSE(w.masterEvents.closed);
    CHECK(w.masterEvents.dataCalls >= 2);  // "put 3" completes in a later read than the big one
    CHECK(w.masterEvents.text() == "put 1" + big + "put 3");
}

TEST_CASE("the records one read completes reach the session in one onData (one apply transaction)") {
    // A plaintext link hands the session one read at a time, and the replica applies what one read
    // brought in one transaction (one fsync). Handed on record by record, 50 change models in one
    // read would cost 50 fsyncs on the slave's loop (seen: seconds of silence under load).
    Ready w;
    std::string want;
    for (int i = 0; i < 50; ++i) {
        std::string frame = "model " + std::to_string(i) + ";";
        want += frame;
        REQUIRE(w.slave->send(bytesOf(frame)).ok());
    }
    auto bytes = w.slaveProbe->take();
    w.masterProbe->events->onData(Bytes(bytes.data(), bytes.size()));
    CHECK(w.masterEvents.dataCalls == 1);
    CHECK(w.masterEvents.text() == want);
    // A tampered record after good ones in the same read: nothing of that read is handed on.
    REQUIRE(w.slave->send(bytesOf("good")).ok());
    REQUIRE(w.slave->send(bytesOf("tampered")).ok());
    bytes = w.slaveProbe->take();
    bytes.back() ^= 1;
    w.masterProbe->events->onData(Bytes(bytes.data(), bytes.size()));
    CHECK(w.masterEvents.closed);
    CHECK(w.masterEvents.text() == want);
}

TEST_CASE("a record over the limit is refused from its length, before the handshake and after it") {
    SUBCASE("before the handshake: at most a handshake message") {
        Wire w;
        std::vector<uint8_t> header(4);
        putLe32(header.data(), 16u << 20);
        w.masterProbe->events->onData(Bytes(header.data(), header.size()));
        CHECK(w.masterEvents.closed);
        CHECK(w.masterEvents.status.error().code == Errc::TooLarge);
    }
    SUBCASE("after: the frame limit plus header and seal") {
        Wire w(true, 4096);
        w.pump();
        REQUIRE(w.master->authenticated());
        std::vector<uint8_t> header(4);
        putLe32(header.data(), 4096 + 16 + 17 + 1);
        w.masterProbe->events->onData(Bytes(header.data(), header.size()));
        CHECK(w.masterEvents.closed);
        CHECK(w.masterEvents.status.error().code == Errc::TooLarge);
    }
}

TEST_CASE("a peer that closes during the handshake is an error, not a clean end; close() stops events") {
    Wire w;
    w.masterProbe->events->onClosed(Status());
    CHECK(w.masterEvents.closed);
    CHECK_FALSE(w.masterEvents.status.ok());
    Ready r;
    r.master->close();
    CHECK(r.masterProbe->closed);
    REQUIRE(r.slave->send(bytesOf("put 1")).ok());
    CHECK(r.master->send(bytesOf("x")).error().code == Errc::Closed);
}
