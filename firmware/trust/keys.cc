#include "trust/keys.h"

#include <sodium.h>

#include <cstdio>

namespace possync::trust {

Status initSodium() {
    if (sodium_init() < 0) return makeError(Errc::Io, "libsodium cannot initialise (no entropy source?)");
    return {};
}

std::string fingerprint(const PublicKey& key) {
    uint8_t hash[crypto_generichash_BYTES];
    crypto_generichash(hash, sizeof hash, key.data(), key.size(), nullptr, 0);
    return toHex(Bytes(hash, 8));
}

std::string verificationCode(const PublicKey& a, const PublicKey& b) {
    const PublicKey& lo = a < b ? a : b;
    const PublicKey& hi = a < b ? b : a;
    static constexpr char kContext[] = "possync pairing code v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, 8);
    crypto_generichash_update(&st, reinterpret_cast<const uint8_t*>(kContext), sizeof kContext - 1);
    crypto_generichash_update(&st, lo.data(), lo.size());
    crypto_generichash_update(&st, hi.data(), hi.size());
    uint8_t hash[8];
    crypto_generichash_final(&st, hash, sizeof hash);
    char out[8];
    std::snprintf(out, sizeof out, "%06u", static_cast<unsigned>(getLe64(hash) % 1000000));
    return out;
}

Result<PublicKey> parsePublicKey(std::string_view hex) {
    PublicKey key{};
    size_t n = 0;
    if (hex.size() != 2 * key.size() ||
        sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &n, nullptr) != 0 ||
        n != key.size()) {
        return makeError(Errc::InvalidArgument, "a public key is 64 hex digits");
    }
    return key;
}

std::string publicKeyHex(const PublicKey& key) {
    return toHex(Bytes(key.data(), key.size()));
}

}  // namespace possync::trust
