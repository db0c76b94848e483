// Rolling per-table content digest: XOR over all entries of a 64-bit hash of (table, key, value).
//
// XOR makes the digest order-independent and updatable in O(1) per change: a PUT xors out the
// old entry's hash and xors in the new one, a DEL xors out, a CLEAR resets to 0. Two boards
// holding equal tables have equal digests; the digest plus the entry count is what
// `possync digest` prints and the console's `tables` shows.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/bytes.h"

namespace possync::store {

uint64_t tableSeed(std::string_view table);
uint64_t entryHash(uint64_t tableSeed, Bytes key, Bytes value);

}  // namespace possync::store
