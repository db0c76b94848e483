// Identity: a board's long-term key pair, kept in its data directory (DESIGN.md §11).
//
// The file `board.key` next to the LMDB files holds the Ed25519 secret seed: 4 bytes of magic
// ("PSK1") then 32 bytes of seed, mode 0600 whatever the umask. It is made on the board's first
// start (written to board.key.tmp, synced, renamed, the directory synced: a crash never leaves a
// half-written key) and never changes afterwards; the public key, the board's name in the
// store's trust set, follows from it. A key file that group or others may read or write is
// refused with a reason naming the mode: a key other processes could read is no longer this
// board's alone. Nothing here ever logs or prints key material.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/result.h"

#include "trust/keys.h"

namespace possync::trust {

inline constexpr char kKeyFileName[] = "board.key";

class Identity final {
public:
    // Loads `dir`/board.key, making it first when it does not exist (and `create` allows).
    // Errors: Refused (a file group/others can read or write, or not a regular file, or owned by
    // another user), Corrupt (wrong size or magic), NotFound (no file and !create), Io.
    static Result<Identity> loadOrCreate(const std::string& dir, bool create = true);
    // A key pair from a 32-byte seed (tests, and the benchmark's fixed boards).
    static Identity fromSeed(const std::array<uint8_t, 32>& seed);
    // A fresh random key pair held only in memory (tests).
    static Identity generate();

    Identity(const Identity&) = default;
    Identity& operator=(const Identity&) = default;
    ~Identity();

    const PublicKey& publicKey() const { return public_; }
    std::string fingerprint() const { return trust::fingerprint(public_); }
    // An Ed25519 signature of `message`.
    std::array<uint8_t, kSignatureBytes> sign(Bytes message) const;

private:
    Identity() = default;
    PublicKey public_{};
    std::array<uint8_t, 64> secret_{};  // crypto_sign_SECRETKEYBYTES: seed || public key
};

// True when `signature` is `key`'s signature of `message`.
bool verifySignature(const PublicKey& key, Bytes message, const uint8_t* signature);

}  // namespace possync::trust
