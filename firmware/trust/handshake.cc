#include "trust/handshake.h"

#include <sodium.h>

#include <cstring>

namespace possync::trust {

namespace {

constexpr char kContext[] = "possync handshake v1";
// "PS", the handshake version, the message number.
constexpr uint8_t kVersion = 1;
constexpr uint8_t kMagicM1[4] = {'P', 'S', kVersion, 1};
constexpr uint8_t kMagicM2[4] = {'P', 'S', kVersion, 2};
constexpr uint8_t kMagicM3[4] = {'P', 'S', kVersion, 3};
constexpr size_t kKx = crypto_kx_PUBLICKEYBYTES;  // 32
static_assert(kM1Bytes == 4 + 4 + kKx + kPublicKeyBytes);
static_assert(kM2Bytes == 4 + kKx + kPublicKeyBytes + kSignatureBytes + kStreamHeaderBytes);
static_assert(kM3Bytes == 4 + kSignatureBytes + kStreamHeaderBytes);

using Hash = std::array<uint8_t, 32>;

// BLAKE2b-256 of the parts, in order.
Hash hash(std::initializer_list<Bytes> parts) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, 32);
    for (Bytes p : parts) crypto_generichash_update(&st, p.data, p.size);
    Hash out;
    crypto_generichash_final(&st, out.data(), out.size());
    return out;
}

// A stream key: BLAKE2b-256 keyed with th1 of (label | the key exchange's key for that direction).
StreamKey streamKey(const Hash& th1, const char* label, const uint8_t* kxKey) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, th1.data(), th1.size(), kStreamKeyBytes);
    crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(label), std::strlen(label));
    crypto_generichash_update(&st, kxKey, crypto_kx_SESSIONKEYBYTES);
    StreamKey out;
    crypto_generichash_final(&st, out.data(), out.size());
    return out;
}

// The signed message: one role letter, the transcript hash, then the signer's stream header (so
// a header changed in transit fails the handshake instead of the link's first record).
std::array<uint8_t, 1 + 32 + kStreamHeaderBytes> signedPart(char who, const Hash& th, const uint8_t* header) {
    std::array<uint8_t, 1 + 32 + kStreamHeaderBytes> m;
    m[0] = static_cast<uint8_t>(who);
    std::memcpy(m.data() + 1, th.data(), th.size());
    std::memcpy(m.data() + 1 + th.size(), header, kStreamHeaderBytes);
    return m;
}

}  // namespace

// Everything secret or transcript-bound the handshake holds between messages; wiped on free.
struct Handshake::Secrets {
    uint8_t ephPublic[kKx] = {};
    uint8_t ephSecret[crypto_kx_SECRETKEYBYTES] = {};
    uint8_t m1[kM1Bytes] = {};
    Hash th2{};
    StreamKey receiveKey{};
    ~Secrets() { sodium_memzero(this, sizeof *this); }
};

Handshake::Handshake(Role role, const Identity& self, PeerCheck check, uint32_t flags)
    : role_(role),
      state_(role == Role::Initiator ? State::Start : State::AwaitM1),
      self_(self),
      check_(std::move(check)),
      flags_(flags),
      secrets_(std::make_unique<Secrets>()) {}

Handshake::Handshake(Handshake&&) noexcept = default;
Handshake& Handshake::operator=(Handshake&&) noexcept = default;
Handshake::~Handshake() = default;

Handshake Handshake::initiator(const Identity& self, PeerCheck check, uint32_t flags) {
    return Handshake(Role::Initiator, self, std::move(check), flags);
}

Handshake Handshake::responder(const Identity& self, PeerCheck check) {
    return Handshake(Role::Responder, self, std::move(check), 0);
}

Error Handshake::fail(Errc code, std::string message) {
    state_ = State::Failed;
    secrets_.reset();
    streams_ = {};
    return makeError(code, "handshake: " + message);
}

Status Handshake::checkPeer(const uint8_t* key, uint32_t flags) {
    PublicKey peer;
    std::memcpy(peer.data(), key, peer.size());
    if (peer == self_.publicKey()) return fail(Errc::Refused, "the peer presented this board's own key");
    auto standing = check_(peer, flags);
    if (!standing) return fail(standing.error().code, standing.error().message);
    peer_ = peer;
    standing_ = *standing;
    return {};
}

std::vector<uint8_t> Handshake::start() {
    std::vector<uint8_t> m1;
    if (role_ != Role::Initiator || state_ != State::Start) return m1;
    crypto_kx_keypair(secrets_->ephPublic, secrets_->ephSecret);
    m1.resize(kM1Bytes);
    std::memcpy(m1.data(), kMagicM1, 4);
    putLe32(m1.data() + 4, flags_);
    std::memcpy(m1.data() + 8, secrets_->ephPublic, kKx);
    std::memcpy(m1.data() + 8 + kKx, self_.publicKey().data(), kPublicKeyBytes);
    std::memcpy(secrets_->m1, m1.data(), kM1Bytes);
    state_ = State::AwaitM2;
    return m1;
}

Result<std::vector<uint8_t>> Handshake::receive(Bytes message) {
    switch (state_) {
        case State::AwaitM1: return onM1(message);
        case State::AwaitM2: return onM2(message);
        case State::AwaitM3: return onM3(message);
        case State::Start: return fail(Errc::Protocol, "a message before M1 was sent");
        case State::Done: return fail(Errc::Protocol, "a handshake message after the handshake");
        case State::Failed: return makeError(Errc::Protocol, "handshake: the handshake failed before");
    }
    return fail(Errc::Protocol, "unknown state");
}

// Responder: the initiator's M1 -> M2.
Result<std::vector<uint8_t>> Handshake::onM1(Bytes m) {
    if (m.size >= 4 && m.data[0] == 'P' && m.data[1] == 'S' && m.data[3] == 1 && m.data[2] != kVersion) {
        return fail(Errc::Version, "the peer speaks handshake version " + std::to_string(m.data[2]) +
                                       ", this board " + std::to_string(kVersion));
    }
    // A board of protocol 4 or older sends its plaintext Hello: the record's length is the frame's
    // payload length, so the rest of the frame header (12 bytes) and then the payload's
    // FlatBuffers root offset and file identifier follow (wire/frame.h).
    if (m.size >= 20 && std::memcmp(m.data + 16, "PSY1", 4) == 0) {
        return fail(
            Errc::Version,
            "a plaintext possync frame: the peer runs protocol 4 or older (upgrade it, then pair it)");
    }
    if (m.size != kM1Bytes || std::memcmp(m.data, kMagicM1, 4) != 0) {
        return fail(Errc::Protocol,
                    "not a possync handshake (an older board that sends plaintext frames, or "
                    "not a possync board): " +
                        std::to_string(m.size) + " bytes");
    }
    uint32_t flags = getLe32(m.data + 4);
    if ((flags & ~kKnownFlags) != 0) return fail(Errc::Protocol, "unknown flags " + std::to_string(flags));
    flags_ = flags;
    const uint8_t* peerEph = m.data + 8;
    POSSYNC_TRY(checkPeer(m.data + 8 + kKx, flags));

    std::memcpy(secrets_->m1, m.data, kM1Bytes);
    crypto_kx_keypair(secrets_->ephPublic, secrets_->ephSecret);
    uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
    if (crypto_kx_server_session_keys(rx, tx, secrets_->ephPublic, secrets_->ephSecret, peerEph) != 0) {
        return fail(Errc::Corrupt, "the initiator's ephemeral key is not usable");
    }
    Hash th1 = hash({Bytes(kContext, sizeof kContext - 1), Bytes(secrets_->m1, kM1Bytes),
                     Bytes(secrets_->ephPublic, kKx), Bytes(self_.publicKey().data(), kPublicKeyBytes)});
    StreamKey sendKey = streamKey(th1, "r2i", tx);
    secrets_->receiveKey = streamKey(th1, "i2r", rx);
    sodium_memzero(rx, sizeof rx);
    sodium_memzero(tx, sizeof tx);
    streams_.send = std::make_unique<Sealer>(sendKey);
    sodium_memzero(sendKey.data(), sendKey.size());

    auto signed_ = signedPart('R', th1, streams_.send->header().data());
    auto sig = self_.sign(Bytes(signed_.data(), signed_.size()));
    std::vector<uint8_t> m2(kM2Bytes);
    uint8_t* p = m2.data();
    std::memcpy(p, kMagicM2, 4);
    std::memcpy(p += 4, secrets_->ephPublic, kKx);
    std::memcpy(p += kKx, self_.publicKey().data(), kPublicKeyBytes);
    std::memcpy(p += kPublicKeyBytes, sig.data(), sig.size());
    std::memcpy(p += kSignatureBytes, streams_.send->header().data(), kStreamHeaderBytes);
    secrets_->th2 = hash({Bytes(th1.data(), th1.size()), Bytes(m2.data(), m2.size())});
    state_ = State::AwaitM3;
    return m2;
}

// Initiator: the responder's M2 -> M3.
Result<std::vector<uint8_t>> Handshake::onM2(Bytes m) {
    if (m.size != kM2Bytes || std::memcmp(m.data, kMagicM2, 4) != 0) {
        return fail(Errc::Protocol,
                    "expected the responder's M2, got " + std::to_string(m.size) + " other bytes");
    }
    const uint8_t* peerEph = m.data + 4;
    const uint8_t* peerKey = peerEph + kKx;
    const uint8_t* sig = peerKey + kPublicKeyBytes;
    const uint8_t* header = sig + kSignatureBytes;
    POSSYNC_TRY(checkPeer(peerKey, flags_));

    Hash th1 = hash({Bytes(kContext, sizeof kContext - 1), Bytes(secrets_->m1, kM1Bytes), Bytes(peerEph, kKx),
                     Bytes(peerKey, kPublicKeyBytes)});
    auto signedR = signedPart('R', th1, header);
    if (!verifySignature(*peer_, Bytes(signedR.data(), signedR.size()), sig)) {
        return fail(Errc::Corrupt, "the responder's signature does not verify");
    }
    uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
    if (crypto_kx_client_session_keys(rx, tx, secrets_->ephPublic, secrets_->ephSecret, peerEph) != 0) {
        return fail(Errc::Corrupt, "the responder's ephemeral key is not usable");
    }
    StreamKey sendKey = streamKey(th1, "i2r", tx);
    StreamKey receiveKey = streamKey(th1, "r2i", rx);
    sodium_memzero(rx, sizeof rx);
    sodium_memzero(tx, sizeof tx);
    StreamHeader peerHeader;
    std::memcpy(peerHeader.data(), header, peerHeader.size());
    streams_.send = std::make_unique<Sealer>(sendKey);
    streams_.receive = std::make_unique<Opener>(receiveKey, peerHeader);
    sodium_memzero(sendKey.data(), sendKey.size());
    sodium_memzero(receiveKey.data(), receiveKey.size());

    Hash th2 = hash({Bytes(th1.data(), th1.size()), m});
    auto signedI = signedPart('I', th2, streams_.send->header().data());
    auto sigI = self_.sign(Bytes(signedI.data(), signedI.size()));
    std::vector<uint8_t> m3(kM3Bytes);
    std::memcpy(m3.data(), kMagicM3, 4);
    std::memcpy(m3.data() + 4, sigI.data(), sigI.size());
    std::memcpy(m3.data() + 4 + kSignatureBytes, streams_.send->header().data(), kStreamHeaderBytes);
    secrets_.reset();
    state_ = State::Done;
    return m3;
}

// Responder: the initiator's M3 -> done.
Result<std::vector<uint8_t>> Handshake::onM3(Bytes m) {
    if (m.size != kM3Bytes || std::memcmp(m.data, kMagicM3, 4) != 0) {
        return fail(Errc::Protocol,
                    "expected the initiator's M3, got " + std::to_string(m.size) + " other bytes");
    }
    auto signedI = signedPart('I', secrets_->th2, m.data + 4 + kSignatureBytes);
    if (!verifySignature(*peer_, Bytes(signedI.data(), signedI.size()), m.data + 4)) {
        return fail(Errc::Corrupt, "the initiator's signature does not verify");
    }
    StreamHeader peerHeader;
    std::memcpy(peerHeader.data(), m.data + 4 + kSignatureBytes, peerHeader.size());
    streams_.receive = std::make_unique<Opener>(secrets_->receiveKey, peerHeader);
    secrets_.reset();
    state_ = State::Done;
    return std::vector<uint8_t>{};
}

Handshake::Streams Handshake::takeStreams() {
    if (state_ != State::Done) return {};
    return std::move(streams_);
}

const char* handshakeStateName(Handshake::State state) {
    switch (state) {
        case Handshake::State::Start: return "start";
        case Handshake::State::AwaitM1: return "await-m1";
        case Handshake::State::AwaitM2: return "await-m2";
        case Handshake::State::AwaitM3: return "await-m3";
        case Handshake::State::Done: return "done";
        case Handshake::State::Failed: return "failed";
    }
    return "?";
}

}  // namespace possync::trust
