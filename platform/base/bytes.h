// Byte helpers: big/little-endian integers, hex text, byte views.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace possync {

// A borrowed run of bytes (never owns; the caller keeps the memory alive).
struct Bytes {
    const uint8_t* data = nullptr;
    size_t size = 0;

    Bytes() = default;
    Bytes(const void* d, size_t n) : data(static_cast<const uint8_t*>(d)), size(n) {}
    Bytes(std::string_view s) : data(reinterpret_cast<const uint8_t*>(s.data())), size(s.size()) {}
    std::string_view view() const { return {reinterpret_cast<const char*>(data), size}; }
    std::string str() const { return std::string(view()); }
    bool operator==(const Bytes& o) const {
        return size == o.size && (size == 0 || std::memcmp(data, o.data, size) == 0);
    }
};

inline void putBe64(uint8_t* out, uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        out[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}
inline uint64_t getBe64(const uint8_t* in) {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | in[i];
    return v;
}
inline void putLe32(uint8_t* out, uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        out[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}
inline uint32_t getLe32(const uint8_t* in) {
    return uint32_t(in[0]) | uint32_t(in[1]) << 8 | uint32_t(in[2]) << 16 | uint32_t(in[3]) << 24;
}
inline void putLe64(uint8_t* out, uint64_t v) {
    for (int i = 0; i < 8; ++i) {
        out[i] = static_cast<uint8_t>(v);
        v >>= 8;
    }
}
inline uint64_t getLe64(const uint8_t* in) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | in[i];
    return v;
}

// Lower-case hex of the bytes.
std::string toHex(Bytes b);
// Parses hex (either case, even length); nullopt on any other character.
std::optional<std::string> fromHex(std::string_view hex);
// A 64-bit value as 16 lower-case hex digits (generations, digests).
std::string hex64(uint64_t v);
// Parses up to 16 hex digits; nullopt on anything else.
std::optional<uint64_t> parseHex64(std::string_view s);
// Parses a decimal unsigned 64-bit number (no sign, no spaces); nullopt on overflow/garbage.
std::optional<uint64_t> parseU64(std::string_view s);
// Printable form for people (logs, messages): the text itself when it is printable ASCII, else
// "0x" + hex.
std::string printable(Bytes b);

// The one rule for keys and values that people read and type, in the tool and on the console:
// displayBytes shows bytes as text when they are non-empty UTF-8 without control characters
// (spaces only if `allowSpace`) and do not themselves begin with "0x"; anything else as "0x"
// followed by lower-case hex. So whatever begins with "0x" on output is hex, and
// parseBytesArg, its inverse for input, reads "0x..." as hex (either case; "0x" alone is no
// bytes) and anything else as the text itself.
std::string displayBytes(Bytes b, bool allowSpace = true);
// InvalidArgument naming `what` ("KEY") for "0x" followed by no valid hex.
Result<std::string> parseBytesArg(std::string_view word, const char* what = "value");
// A JSON string literal of `utf8` (quotes, backslashes and control characters escaped).
std::string jsonQuote(std::string_view utf8);
// True when `b` is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool isUtf8(Bytes b);

}  // namespace possync
