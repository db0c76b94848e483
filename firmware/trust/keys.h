// Keys: a board's long-term public key, its fingerprint and the pairing verification code.
//
// Every board has an Ed25519 key pair (libsodium's crypto_sign) made on its first start
// (identity.h). Its public key is the board's name in the store's trust set (DESIGN.md §11):
// links authenticate with it (handshake.h), discovery announces its fingerprint, and two boards
// that pair show the same verification code on their consoles, derived from both public keys,
// so an operator who sees the same six digits on both knows no third board sits between them.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "base/bytes.h"
#include "base/result.h"

namespace possync::trust {

inline constexpr size_t kPublicKeyBytes = 32;  // crypto_sign_PUBLICKEYBYTES
inline constexpr size_t kSignatureBytes = 64;  // crypto_sign_BYTES

using PublicKey = std::array<uint8_t, kPublicKeyBytes>;

// Initialises libsodium once per process (thread-safe, idempotent). Fails only when the
// library cannot work at all (no entropy source): a fatal start-up error for the caller.
Status initSodium();

// 16 hex digits naming a key (the first 8 bytes of its BLAKE2b-256 hash): short enough for a
// console line and a DNS-SD TXT record, long enough that two boards of a store never share one.
// It names a key; it is not a secret and proves nothing by itself.
std::string fingerprint(const PublicKey& key);

// Six decimal digits derived from both keys (BLAKE2b of the two keys in byte order, so both
// boards compute the same code whichever side they are on).
std::string verificationCode(const PublicKey& a, const PublicKey& b);

// Parses 64 hex digits (the provisioning config's form of a key).
Result<PublicKey> parsePublicKey(std::string_view hex);
std::string publicKeyHex(const PublicKey& key);

}  // namespace possync::trust
