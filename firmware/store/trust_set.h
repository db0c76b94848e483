// The store's trust set (DESIGN.md §11): the public keys of the boards paired with the store.
//
// Kept in the reserved database possync.trust of every board. The master writes it
// (WriteTxn::putTrust/delTrust) and each change becomes a log entry like a business write, so
// INCREMENTAL slaves follow it; a FULL sync carries the whole set and replaces the slave's.
// A promoted slave therefore still knows every member.
//
// Record layout:
//   key    the member's 32-byte public key, raw
//   value  8-byte big-endian addedMs (wall clock when it joined) | 1 byte TrustHow | name
//          (UTF-8, at most kMaxTrustNameBytes; the board's device id as it paired)
//
// The keys are plain bytes here: the store knows nothing of libsodium (firmware/trust does).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace possync::store {

inline constexpr std::string_view kTrustDb = "possync.trust";
inline constexpr size_t kTrustKeyBytes = 32;
// A device id's bound (wire/bounds.h kMaxIdBytes): the name is the device id it paired with.
inline constexpr size_t kMaxTrustNameBytes = 64;

using TrustKey = std::array<uint8_t, kTrustKeyBytes>;

// How a member joined the set. Stored as one byte: values never change meaning.
enum class TrustHow : uint8_t {
    Self = 0,         // the master that made the store's set
    Accepted = 1,     // `pair accept DEVICE` on the master
    Window = 2,       // admitted while `pair open SECONDS` was in effect
    Provisioned = 3,  // listed in the config file (factory provisioning)
};

// "self", "accepted", "window", "provisioned" ("unknown" for a value outside the enum).
const char* trustHowName(TrustHow how);

struct TrustMember {
    TrustKey key{};
    std::string name;
    TrustHow how = TrustHow::Self;
    uint64_t addedMs = 0;

    bool operator==(const TrustMember&) const = default;
};

// The record's value for `member`. InvalidArgument when the name is longer than
// kMaxTrustNameBytes or not UTF-8, or `how` is not one of TrustHow's values.
Result<std::string> encodeTrustValue(const TrustMember& member);
// The member stored under `key` with `value`. Errc::Corrupt naming possync.trust when the key
// is not kTrustKeyBytes long or the value does not follow the layout above.
Result<TrustMember> decodeTrustMember(Bytes key, Bytes value);

inline Bytes trustKeyBytes(const TrustKey& key) {
    return Bytes(key.data(), key.size());
}

}  // namespace possync::store
