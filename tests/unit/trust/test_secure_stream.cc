// Sealed streams: records open in order under their key; one flipped bit anywhere, a replayed,
// dropped, reordered or cut record, or another key fails to open, and the stream stays dead.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "trust/keys.h"
#include "trust/secure_stream.h"

using namespace possync;
using namespace possync::trust;

namespace {

StreamKey keyOf(uint8_t b) {
    StreamKey k;
    k.fill(b);
    return k;
}

std::vector<uint8_t> sealOne(Sealer& s, const std::string& text) {
    std::vector<uint8_t> out;
    s.seal(Bytes(text), out);
    return out;
}

std::string openText(Opener& o, const std::vector<uint8_t>& rec, Status* status = nullptr) {
    std::vector<uint8_t> out;
    Status st = o.open(Bytes(rec.data(), rec.size()), out);
    if (status) *status = st;
    return st.ok() ? std::string(out.begin(), out.end()) : std::string("<failed>");
}

}  // namespace

TEST_CASE("records open in order, byte for byte; a sealed record hides its text") {
    REQUIRE(initSodium().ok());
    Sealer s(keyOf(7));
    Opener o(keyOf(7), s.header());
    for (int i = 0; i < 100; ++i) {
        std::string text = "orders/" + std::to_string(i) + " = espresso " + std::string(i, 'x');
        auto rec = sealOne(s, text);
        CHECK(rec.size() == text.size() + kSealBytes);
        CHECK(std::string(rec.begin(), rec.end()).find("espresso") == std::string::npos);
        CHECK(openText(o, rec) == text);
    }
    auto empty = sealOne(s, "");
    CHECK(openText(o, empty).empty());
}

TEST_CASE("one flipped bit at any offset of a record fails it, and the stream stays dead") {
    REQUIRE(initSodium().ok());
    std::string text = "stock/items = 42";
    for (size_t bit = 0; bit < (text.size() + kSealBytes) * 8; ++bit) {
        Sealer s(keyOf(1));
        Opener o(keyOf(1), s.header());
        auto rec = sealOne(s, text);
        rec[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
        Status st;
        openText(o, rec, &st);
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::Corrupt);
        CHECK(o.failed());
        // The next genuine record does not revive it.
        auto next = sealOne(s, "next");
        openText(o, next, &st);
        CHECK_FALSE(st.ok());
    }
}

TEST_CASE("a replayed, dropped, reordered or truncated record fails; so does another key or header") {
    REQUIRE(initSodium().ok());
    SUBCASE("replayed") {
        Sealer s(keyOf(2));
        Opener o(keyOf(2), s.header());
        auto r1 = sealOne(s, "one");
        CHECK(openText(o, r1) == "one");
        Status st;
        openText(o, r1, &st);
        CHECK_FALSE(st.ok());
    }
    SUBCASE("dropped") {
        Sealer s(keyOf(2));
        Opener o(keyOf(2), s.header());
        sealOne(s, "one");
        auto r2 = sealOne(s, "two");
        Status st;
        openText(o, r2, &st);
        CHECK_FALSE(st.ok());
    }
    SUBCASE("reordered") {
        Sealer s(keyOf(2));
        Opener o(keyOf(2), s.header());
        auto r1 = sealOne(s, "one");
        auto r2 = sealOne(s, "two");
        Status st;
        openText(o, r2, &st);
        CHECK_FALSE(st.ok());
        openText(o, r1, &st);
        CHECK_FALSE(st.ok());
    }
    SUBCASE("truncated") {
        for (size_t cut = 0; cut < 3 + kSealBytes; ++cut) {
            Sealer s(keyOf(2));
            Opener o(keyOf(2), s.header());
            auto r = sealOne(s, "abc");
            r.resize(cut);
            Status st;
            openText(o, r, &st);
            CHECK_FALSE(st.ok());
        }
    }
    SUBCASE("another key, another header") {
        Sealer s(keyOf(2));
        auto r = sealOne(s, "one");
        Opener wrongKey(keyOf(3), s.header());
        Status st;
        openText(wrongKey, r, &st);
        CHECK_FALSE(st.ok());
        Sealer other(keyOf(2));
        Opener wrongHeader(keyOf(2), other.header());
        openText(wrongHeader, r, &st);
        CHECK_FALSE(st.ok());
    }
}
