#include "base/bytes.h"

namespace possync {

std::string toHex(Bytes b) {
    static const char digits[] = "0123456789abcdef";
    std::string out(b.size * 2, '0');
    for (size_t i = 0; i < b.size; ++i) {
        out[2 * i] = digits[b.data[i] >> 4];
        out[2 * i + 1] = digits[b.data[i] & 15];
    }
    return out;
}

static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::optional<std::string> fromHex(std::string_view hex) {
    if (hex.size() % 2) return std::nullopt;
    std::string out(hex.size() / 2, '\0');
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = hexValue(hex[2 * i]), lo = hexValue(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out[i] = static_cast<char>(hi << 4 | lo);
    }
    return out;
}

std::string hex64(uint64_t v) {
    uint8_t be[8];
    putBe64(be, v);
    return toHex(Bytes(be, 8));
}

std::optional<uint64_t> parseHex64(std::string_view s) {
    if (s.empty() || s.size() > 16) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        int d = hexValue(c);
        if (d < 0) return std::nullopt;
        v = v << 4 | uint64_t(d);
    }
    return v;
}

std::optional<uint64_t> parseU64(std::string_view s) {
    if (s.empty() || s.size() > 20) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9') return std::nullopt;
        uint64_t d = uint64_t(c - '0');
        if (v > (UINT64_MAX - d) / 10) return std::nullopt;
        v = v * 10 + d;
    }
    return v;
}

std::string printable(Bytes b) {
    for (size_t i = 0; i < b.size; ++i)
        if (b.data[i] < 0x20 || b.data[i] > 0x7e) return "0x" + toHex(b);
    return b.str();
}

}  // namespace possync
