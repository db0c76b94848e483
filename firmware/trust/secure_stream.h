// SecureStream: one direction of an authenticated, encrypted link (libsodium secretstream).
//
// After the handshake (handshake.h) each direction of a link has its own 32-byte key. The
// sending side seals each record with crypto_secretstream_xchacha20poly1305 (XChaCha20 and
// Poly1305, 17 bytes added per record); the receiving side opens them in order. The stream's
// internal counter makes every record depend on its place: a record that is tampered with,
// replayed, dropped, reordered or cut short fails to open, and a link whose record fails is
// closed (the caller's job) before anything of it is used. A stream never rekeys by itself;
// 2^64 records per link is more than a board will ever send.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace possync::trust {

inline constexpr size_t kStreamKeyBytes = crypto_secretstream_xchacha20poly1305_KEYBYTES;        // 32
inline constexpr size_t kStreamHeaderBytes = crypto_secretstream_xchacha20poly1305_HEADERBYTES;  // 24
inline constexpr size_t kSealBytes = crypto_secretstream_xchacha20poly1305_ABYTES;               // 17

using StreamKey = std::array<uint8_t, kStreamKeyBytes>;
using StreamHeader = std::array<uint8_t, kStreamHeaderBytes>;

// The sending direction.
class Sealer final {
public:
    // A new stream under `key`; header() is what the receiver needs to open it.
    explicit Sealer(const StreamKey& key);
    ~Sealer();
    Sealer(const Sealer&) = delete;
    Sealer& operator=(const Sealer&) = delete;

    const StreamHeader& header() const { return header_; }
    // Appends the sealed record of `plain` (plain.size + kSealBytes bytes) to `out`.
    void seal(Bytes plain, std::vector<uint8_t>& out);

private:
    crypto_secretstream_xchacha20poly1305_state state_;
    StreamHeader header_;
};

// The receiving direction.
class Opener final {
public:
    Opener(const StreamKey& key, const StreamHeader& header);
    ~Opener();
    Opener(const Opener&) = delete;
    Opener& operator=(const Opener&) = delete;

    // Opens the next record into `out` (replacing its contents). Errc::Corrupt when the
    // record was tampered with, replayed, reordered, cut short or sealed under another key;
    // after an error the stream is dead: every later record fails too.
    Status open(Bytes sealed, std::vector<uint8_t>& out);
    // The same, appending the record's plaintext to `out` (on an error `out` is as it was).
    Status openAppend(Bytes sealed, std::vector<uint8_t>& out);
    bool failed() const { return failed_; }

private:
    crypto_secretstream_xchacha20poly1305_state state_;
    bool failed_ = false;
};

}  // namespace possync::trust
