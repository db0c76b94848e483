#include <doctest/doctest.h>

#include "base/bytes.h"
#include "base/result.h"

using namespace possync;

TEST_CASE("hex round-trips every byte value") {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    auto back = fromHex(toHex(Bytes(all)));
    REQUIRE(back);
    CHECK(*back == all);
    CHECK(toHex(Bytes("\x01\xab", 2)) == "01ab");
    CHECK(fromHex("0A0b") == std::string("\x0a\x0b", 2));
}

TEST_CASE("hex rejects odd length and non-hex characters") {
    CHECK_FALSE(fromHex("abc"));
    CHECK_FALSE(fromHex("zz"));
    CHECK_FALSE(parseHex64(""));
    CHECK_FALSE(parseHex64("00000000000000000"));
    CHECK(parseHex64("ff") == 255u);
}

TEST_CASE("big-endian and little-endian integers") {
    uint8_t b[8];
    putBe64(b, 0x0102030405060708ull);
    CHECK(b[0] == 1);
    CHECK(b[7] == 8);
    CHECK(getBe64(b) == 0x0102030405060708ull);
    putLe32(b, 0xdeadbeef);
    CHECK(b[0] == 0xef);
    CHECK(getLe32(b) == 0xdeadbeefu);
    CHECK(hex64(1) == "0000000000000001");
}

TEST_CASE("parseU64 rejects overflow and garbage") {
    CHECK(parseU64("18446744073709551615") == UINT64_MAX);
    CHECK_FALSE(parseU64("18446744073709551616"));
    CHECK_FALSE(parseU64("-1"));
    CHECK_FALSE(parseU64(""));
    CHECK_FALSE(parseU64("12a"));
}

TEST_CASE("Result carries a value or an error") {
    Result<int> good(5);
    CHECK(good.ok());
    CHECK(*good == 5);
    Result<int> bad(makeError(Errc::NotFound, "no such table: menu"));
    CHECK_FALSE(bad.ok());
    CHECK(bad.error().code == Errc::NotFound);
    CHECK(std::string(errcName(bad.error().code)) == "not-found");
    Status s;
    CHECK(s.ok());
}

TEST_CASE("printable shows text as is and binary as hex") {
    CHECK(printable(Bytes("burger")) == "burger");
    CHECK(printable(Bytes("\x00\x01", 2)) == "0x0001");
}

TEST_CASE("one rule for keys and values people read and type: text as text, the rest as 0x-hex") {
    CHECK(displayBytes(Bytes("burger")) == "burger");
    CHECK(displayBytes(Bytes("café au lait")) == "café au lait");                         // UTF-8 text
    CHECK(displayBytes(Bytes("café au lait"), false) == "0x636166c3a9206175206c616974");  // a key in a table
    CHECK(displayBytes(Bytes("\x00\xff", 2)) == "0x00ff");                                // binary
    CHECK(displayBytes(Bytes("0x00ff")) == "0x307830306666");         // text that looks like hex
    CHECK(displayBytes(Bytes("tab\there")) == "0x7461620968657265");  // a control character
    CHECK(displayBytes(Bytes("\xc2\x85", 2)) == "0xc285");            // a C1 control (NEL)
    CHECK(displayBytes(Bytes("\xc3\x28", 2)) == "0xc328");            // not UTF-8
    CHECK(displayBytes(Bytes("\xe2\x82", 2)) == "0xe282");            // cut short
    CHECK(displayBytes(Bytes("\xc0\xaf", 2)) == "0xc0af");            // overlong
    CHECK(displayBytes(Bytes("\xed\xa0\x80", 3)) == "0xeda080");      // a surrogate
    CHECK(displayBytes(Bytes()) == "0x");                             // empty
    for (std::string s : {std::string("burger"), std::string("café"), std::string("\x00\xff", 2),
                          std::string("0x00ff"), std::string(), std::string("a\nb")}) {
        CAPTURE(s);
        auto back = parseBytesArg(displayBytes(Bytes(s)));
        REQUIRE(back.ok());
        CHECK(*back == s);  // what is shown can be typed back
    }
    CHECK(parseBytesArg("0X41").value() == "A");
    auto bad = parseBytesArg("0xzz", "KEY");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().message == "KEY '0xzz' begins with 0x but is not hex");
    CHECK(isUtf8(Bytes("\xf0\x9f\x8d\x94", 4)));        // a burger emoji, four bytes
    CHECK_FALSE(isUtf8(Bytes("\xf4\x90\x80\x80", 4)));  // above U+10FFFF
}
