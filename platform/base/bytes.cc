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

bool isUtf8(Bytes b) {
    size_t i = 0;
    while (i < b.size) {
        uint8_t c = b.data[i];
        if (c < 0x80) {
            ++i;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) {
            n = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + n >= b.size) return false;  // cut short
        for (size_t k = 1; k <= n; ++k) {
            uint8_t cc = b.data[i + k];
            if ((cc & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (cc & 0x3f);
        }
        static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
        if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        i += n + 1;
    }
    return true;
}

std::string displayBytes(Bytes b, bool allowSpace) {
    std::string_view s = b.view();
    bool text = !s.empty() && s.substr(0, 2) != "0x" && isUtf8(b);
    for (size_t i = 0; text && i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x20 || c == 0x7f || (c == ' ' && !allowSpace)) text = false;
        // C1 controls (U+0080..U+009F) are two bytes in UTF-8: 0xc2 0x80..0x9f.
        if (c == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9f) text = false;
    }
    if (text) return std::string(s);
    return "0x" + toHex(b);
}

std::string jsonQuote(std::string_view utf8) {
    std::string out = "\"";
    for (char ch : utf8) {
        auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            static constexpr char kHex[] = "0123456789abcdef";
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
        } else {
            out += ch;
        }
    }
    return out + "\"";
}

Result<std::string> parseBytesArg(std::string_view word, const char* what) {
    if (word.substr(0, 2) != "0x" && word.substr(0, 2) != "0X") return std::string(word);
    std::optional<std::string> bytes = fromHex(word.substr(2));
    if (!bytes)
        return makeError(Errc::InvalidArgument,
                         std::string(what) + " '" + std::string(word) + "' begins with 0x but is not hex");
    return std::move(*bytes);
}

}  // namespace possync
