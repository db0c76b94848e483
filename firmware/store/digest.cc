#include "store/digest.h"

#include <xxhash.h>

namespace possync::store {

uint64_t tableSeed(std::string_view table) {
    return XXH3_64bits_withSeed(table.data(), table.size(), 0x706f7373796e63ull);
}

uint64_t entryHash(uint64_t seed, Bytes key, Bytes value) {
    // The key's hash seeds the value's hash, so (key, value) boundaries cannot be shifted.
    uint64_t k = XXH3_64bits_withSeed(key.data, key.size, seed);
    return XXH3_64bits_withSeed(value.data, value.size, k ^ (uint64_t(key.size) << 32));
}

}  // namespace possync::store
