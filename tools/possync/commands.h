// The `possync` tool's data commands (DESIGN.md §5), each a function over an open Store.
#pragma once

#include <cstdint>
#include <string>

#include "store/store.h"

namespace possync::tool {

struct TextMode {
    bool hex = false;  // --hex: keys and values are hex on input and output
};

// Each returns the process exit code and prints a one-line reason on failure.
int cmdPut(store::Store& s, const TextMode& m, const std::string& table, const std::string& key,
           const std::string& value);
int cmdGet(store::Store& s, const TextMode& m, const std::string& table, const std::string& key);
int cmdDel(store::Store& s, const TextMode& m, const std::string& table, const std::string& key);
int cmdDump(store::Store& s, const TextMode& m, const std::string& table);
int cmdDigest(store::Store& s);
int cmdInfo(store::Store& s);
int cmdWatch(store::Store& s, const std::string* list);

struct LoadOptions {
    uint64_t records = 0;
    uint64_t valueSize = 100;
    uint64_t start = 0;  // index of the first record (to extend an earlier load)
    uint64_t batch = 0;  // records per transaction; 0 = as many as one change model holds
    std::string table = "bench";
    uint64_t seed = 1;
};
int cmdLoad(store::Store& s, const LoadOptions& o);

// Synthetic record i of the benchmark data set: 16-byte big-endian counter key and B
// pseudo-random (incompressible) value bytes derived from (seed, i).
void syntheticKey(uint64_t i, uint8_t out[16]);
void syntheticValue(uint64_t seed, uint64_t i, uint8_t* out, size_t size);

// "position=<gen>:<seq> digest=<hex> count=<n>" over all watched tables.
Result<std::string> digestLine(store::Store& s);

}  // namespace possync::tool
