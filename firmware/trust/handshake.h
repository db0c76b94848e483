// Handshake: the mutually authenticated key exchange that opens every link (DESIGN.md §11).
//
// Three messages, no I/O of its own (the caller carries them; the state machine is tested
// against scripted messages, the dqlite way). The initiator is the board that connects (a
// slave, or a board asking to pair); the responder is the master.
//
//   M1  I -> R   magic 1 | flags u32 LE | I's ephemeral X25519 key | I's long-term key     72 bytes
//   M2  R -> I   magic 2 | R's ephemeral key | R's long-term key | sig_R | R's stream header 156 bytes
//   M3  I -> R   magic 3 | sig_I | I's stream header                                        92 bytes
//
//   magic n = 'P' 'S' version(1) n
//
//   th1   = BLAKE2b-256("possync handshake v1" | M1 | R's ephemeral key | R's long-term key)
//   sig_R = Ed25519 by R's long-term key of ("R" | th1 | R's stream header)
//   th2   = BLAKE2b-256(th1 | all of M2)
//   sig_I = Ed25519 by I's long-term key of ("I" | th2 | I's stream header)
//
// Both signatures cover both ephemeral keys and both long-term keys, so each side knows the
// other holds its long-term secret key now (not a replay: the ephemeral keys are fresh) and
// that both computed the same exchange (a relay that swaps a key in transit breaks a
// signature). The stream keys come from the X25519 exchange of the ephemeral keys (crypto_kx)
// hashed with th1: a later theft of a long-term key does not open recorded links. Each side
// decides whether it wants the other's long-term key through a PeerCheck before it signs
// anything or checks a signature: a responder does not sign for a stranger it will refuse.
// After M3 every record of the link is sealed (secure_stream.h), the sync Hello included.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

#include "trust/identity.h"
#include "trust/keys.h"
#include "trust/secure_stream.h"

namespace possync::trust {

inline constexpr size_t kM1Bytes = 72;
inline constexpr size_t kM2Bytes = 156;
inline constexpr size_t kM3Bytes = 92;
// The largest handshake message: a record longer than this before the handshake is done is
// refused without buffering it.
inline constexpr size_t kHandshakeMessageMaxBytes = kM2Bytes;

// M1's flags.
inline constexpr uint32_t kFlagPairing = 1;  // the initiator asks to join the store (pairing.h)
inline constexpr uint32_t kKnownFlags = kFlagPairing;

// How a side stands towards the other's long-term key, as its PeerCheck decides.
enum class PeerStanding {
    Member,     // in the trust set (or the pinned master): a sync link
    Candidate,  // unknown, but admitted to ask for pairing: the link carries pairing messages only
};

// Decides about the peer's long-term key (and, on the responder, M1's flags). An error refuses
// the peer: the handshake fails with it and nothing more is sent.
using PeerCheck = std::function<Result<PeerStanding>(const PublicKey& peer, uint32_t flags)>;

class Handshake final {
public:
    enum class Role { Initiator, Responder };

    // The handshake's states, in the order a successful one passes them.
    enum class State {
        Start,    // initiator: start() not called yet
        AwaitM1,  // responder: waiting for the initiator's M1
        AwaitM2,  // initiator: M1 sent, waiting for the responder's M2
        AwaitM3,  // responder: M2 sent, waiting for the initiator's M3
        Done,     // both sides proved their keys; the streams are ready (takeStreams)
        Failed,   // a message was refused: the link is to be closed; nothing more is accepted
    };

    static Handshake initiator(const Identity& self, PeerCheck check, uint32_t flags = 0);
    static Handshake responder(const Identity& self, PeerCheck check);
    Handshake(Handshake&&) noexcept;
    Handshake& operator=(Handshake&&) noexcept;
    ~Handshake();

    // Initiator only, once: M1.
    std::vector<uint8_t> start();
    // One whole message from the peer. Returns the message to send back (M2 for a responder's
    // M1, M3 for an initiator's M2) or an empty vector (a responder's M3: done). Errors, after
    // which the state is Failed: Protocol (a message of the wrong size, magic or flags, or in
    // the wrong state; Version for M1 of another handshake version or a plaintext peer),
    // Refused (the PeerCheck refused, or the peer presented this board's own key), Corrupt (a
    // signature or key exchange that does not verify).
    Result<std::vector<uint8_t>> receive(Bytes message);

    State state() const { return state_; }
    Role role() const { return role_; }
    // Known once the peer's first message was accepted.
    const std::optional<PublicKey>& peerKey() const { return peer_; }
    PeerStanding standing() const { return standing_; }
    uint32_t flags() const { return flags_; }

    struct Streams {
        std::unique_ptr<Sealer> send;
        std::unique_ptr<Opener> receive;
    };
    // Once Done: this side's sealer and opener (once; the handshake keeps no key afterwards).
    Streams takeStreams();

private:
    struct Secrets;
    Handshake(Role role, const Identity& self, PeerCheck check, uint32_t flags);
    Result<std::vector<uint8_t>> onM1(Bytes m);
    Result<std::vector<uint8_t>> onM2(Bytes m);
    Result<std::vector<uint8_t>> onM3(Bytes m);
    Error fail(Errc code, std::string message);
    Status checkPeer(const uint8_t* key, uint32_t flags);

    Role role_;
    State state_;
    Identity self_;
    PeerCheck check_;
    uint32_t flags_;
    std::optional<PublicKey> peer_;
    PeerStanding standing_ = PeerStanding::Member;
    std::unique_ptr<Secrets> secrets_;
    Streams streams_;
};

const char* handshakeStateName(Handshake::State state);

}  // namespace possync::trust
