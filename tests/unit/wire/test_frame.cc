// FrameDecoder and frame headers: splits at every byte, several frames per feed, limits,
// zero-copy and alignment, errors that stop the decoder, destruction inside onFrame.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "wire/frame.h"

using namespace possync;
using namespace possync::wire;

namespace {

std::vector<uint8_t> payloadOf(size_t size, uint8_t seed) {
    std::vector<uint8_t> p(size);
    for (size_t i = 0; i < size; ++i) p[i] = static_cast<uint8_t>(seed + i * 7);
    return p;
}

// The concatenated frames of `payloads`.
std::vector<uint8_t> streamOf(const std::vector<std::vector<uint8_t>>& payloads) {
    std::vector<uint8_t> out;
    for (const auto& p : payloads) {
        auto f = encodeFrame(Bytes(p.data(), p.size()));
        out.insert(out.end(), f.begin(), f.end());
    }
    return out;
}

struct Collector {
    std::vector<std::vector<uint8_t>> got;
    bool allAligned = true;
    FrameDecoder::FrameCallback callback() {
        return [this](Bytes p) {
            if (reinterpret_cast<uintptr_t>(p.data) % kPayloadAlignment != 0) allAligned = false;
            got.emplace_back(p.data, p.data + p.size);
            return Status();
        };
    }
};

}  // namespace

TEST_CASE("frame header is 4 bytes little-endian; encodeFrame prefixes the payload") {
    std::vector<uint8_t> out{0xAA};
    appendFrameHeader(out, 0x01020304);
    CHECK(out == std::vector<uint8_t>{0xAA, 0x04, 0x03, 0x02, 0x01});
    auto f = encodeFrame(Bytes("hello"));
    CHECK(f == std::vector<uint8_t>{5, 0, 0, 0, 'h', 'e', 'l', 'l', 'o'});
}

TEST_CASE("decoder: several frames in one feed, and every split of the stream into two feeds") {
    std::vector<std::vector<uint8_t>> payloads{payloadOf(1, 1), payloadOf(13, 2), payloadOf(64, 3),
                                               payloadOf(5, 4), payloadOf(300, 5)};
    auto stream = streamOf(payloads);

    {
        FrameDecoder d(1024);
        Collector c;
        REQUIRE(d.feed(Bytes(stream.data(), stream.size()), c.callback()).ok());
        CHECK(c.got == payloads);
        CHECK(c.allAligned);
        CHECK(d.buffered() == 0);
        CHECK(d.framesDecoded() == payloads.size());
    }
    for (size_t cut = 0; cut <= stream.size(); ++cut) {
        FrameDecoder d(1024);
        Collector c;
        REQUIRE(d.feed(Bytes(stream.data(), cut), c.callback()).ok());
        REQUIRE(d.feed(Bytes(stream.data() + cut, stream.size() - cut), c.callback()).ok());
        CHECK(c.got == payloads);
        CHECK(c.allAligned);
        CHECK(d.buffered() == 0);
    }
    {
        // One byte at a time; buffered() counts what is held of the current frame.
        FrameDecoder d(1024);
        Collector c;
        size_t maxBuffered = 0;
        for (uint8_t b : stream) {
            REQUIRE(d.feed(Bytes(&b, 1), c.callback()).ok());
            maxBuffered = std::max(maxBuffered, d.buffered());
        }
        CHECK(c.got == payloads);
        CHECK(maxBuffered == kFrameHeaderBytes + 300 - 1);
    }
}

TEST_CASE("decoder: every split into three feeds") {
    std::vector<std::vector<uint8_t>> payloads{payloadOf(3, 9), payloadOf(17, 8), payloadOf(8, 7)};
    auto stream = streamOf(payloads);
    for (size_t a = 0; a <= stream.size(); ++a) {
        for (size_t b = a; b <= stream.size(); ++b) {
            FrameDecoder d(64);
            Collector c;
            REQUIRE(d.feed(Bytes(stream.data(), a), c.callback()).ok());
            REQUIRE(d.feed(Bytes(stream.data() + a, b - a), c.callback()).ok());
            REQUIRE(d.feed(Bytes(stream.data() + b, stream.size() - b), c.callback()).ok());
            REQUIRE(c.got == payloads);
        }
    }
}

TEST_CASE("decoder: an aligned payload is delivered in place, a misaligned one as an aligned copy") {
    // uint64_t storage: the buffer is 8-aligned, so the first payload (after 4 header
    // bytes) is at +4 and misaligned; shift the frame by 4 to align it.
    std::vector<uint64_t> words(16, 0);
    auto* base = reinterpret_cast<uint8_t*>(words.data());
    auto payload = payloadOf(24, 3);
    auto frame = encodeFrame(Bytes(payload.data(), payload.size()));

    std::memcpy(base + 4, frame.data(), frame.size());
    FrameDecoder d;
    const uint8_t* seen = nullptr;
    std::vector<uint8_t> copy;
    auto cb = [&](Bytes p) {
        seen = p.data;
        copy.assign(p.data, p.data + p.size);
        return Status();
    };
    REQUIRE(d.feed(Bytes(base + 4, frame.size()), cb).ok());
    CHECK(seen == base + 8);  // zero copy
    CHECK(copy == payload);

    std::memcpy(base, frame.data(), frame.size());
    REQUIRE(d.feed(Bytes(base, frame.size()), cb).ok());
    CHECK(seen != base + 4);
    CHECK(reinterpret_cast<uintptr_t>(seen) % kPayloadAlignment == 0);
    CHECK(copy == payload);
}

TEST_CASE("decoder: a length over the limit is rejected from the header alone, before buffering") {
    std::vector<uint8_t> header;
    appendFrameHeader(header, 1025);
    {
        FrameDecoder d(1024);
        int frames = 0;
        auto st = d.feed(Bytes(header.data(), 2), [&](Bytes) {
            ++frames;
            return Status();
        });
        REQUIRE(st.ok());
        CHECK(d.buffered() == 2);
        st = d.feed(Bytes(header.data() + 2, 2), [&](Bytes) {
            ++frames;
            return Status();
        });
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::TooLarge);
        CHECK(st.error().message == "frame of 1025 bytes is over the limit of 1024 bytes");
        CHECK(d.buffered() == 0);
        CHECK(d.bufferCapacity() == 0);
        CHECK(frames == 0);
    }
    {
        // Exactly the limit is fine; the default limit is 16 MiB.
        FrameDecoder d(1024);
        auto ok = encodeFrame(Bytes(payloadOf(1024, 1).data(), 1024));
        CHECK(d.feed(Bytes(ok.data(), ok.size()), [](Bytes) { return Status(); }).ok());
        CHECK(FrameDecoder().maxFrameBytes() == 16u << 20);
    }
    {
        // A 4 GiB announcement followed by a little data: nothing is allocated for it.
        FrameDecoder d;
        std::vector<uint8_t> huge{0xff, 0xff, 0xff, 0xff, 1, 2, 3};
        auto st = d.feed(Bytes(huge.data(), huge.size()), [](Bytes) { return Status(); });
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::TooLarge);
        CHECK(d.bufferCapacity() == 0);
    }
}

TEST_CASE("decoder: zero length is a protocol error; errors are sticky until reset()") {
    FrameDecoder d(64);
    std::vector<uint8_t> bytes{0, 0, 0, 0, 5, 0, 0, 0};
    int frames = 0;
    auto count = [&](Bytes) {
        ++frames;
        return Status();
    };
    auto st = d.feed(Bytes(bytes.data(), bytes.size()), count);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::Protocol);
    CHECK(st.error().message == "zero-length frame");
    auto good = encodeFrame(Bytes("abc"));
    st = d.feed(Bytes(good.data(), good.size()), count);
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::Protocol);
    CHECK(frames == 0);
    d.reset();
    CHECK(d.feed(Bytes(good.data(), good.size()), count).ok());
    CHECK(frames == 1);
}

TEST_CASE("decoder: an error from onFrame stops decoding and is returned") {
    std::vector<std::vector<uint8_t>> payloads{payloadOf(4, 1), payloadOf(4, 2), payloadOf(4, 3)};
    auto stream = streamOf(payloads);
    FrameDecoder d(64);
    int frames = 0;
    auto st = d.feed(Bytes(stream.data(), stream.size()), [&](Bytes) {
        if (++frames == 2) return Status(makeError(Errc::Corrupt, "bad frame"));
        return Status();
    });
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::Corrupt);
    CHECK(frames == 2);
}

TEST_CASE("decoder: memory stays within one frame, and a large buffer is given back after use") {
    constexpr uint32_t kMax = 6u << 20;
    FrameDecoder d(kMax);
    auto big = payloadOf(kMax, 5);
    auto frame = encodeFrame(Bytes(big.data(), big.size()));
    size_t maxCapacity = 0;
    bool match = false;
    constexpr size_t kRead = 64 * 1024;
    for (size_t at = 0; at < frame.size(); at += kRead) {
        size_t n = std::min(kRead, frame.size() - at);
        REQUIRE(d.feed(Bytes(frame.data() + at, n), [&](Bytes p) {
                     match = p.size == big.size() && std::memcmp(p.data, big.data(), p.size) == 0;
                     return Status();
                 }).ok());
        maxCapacity = std::max(maxCapacity, d.bufferCapacity());
        CHECK(d.buffered() <= kFrameHeaderBytes + kMax);
    }
    CHECK(match);
    CHECK(maxCapacity >= kMax);
    CHECK(maxCapacity < kMax + 8);
    CHECK(d.bufferCapacity() == 0);  // over 4 MiB: released once the frame is done
}

TEST_CASE("decoder: random garbage never crashes and never buffers over the limit") {
    std::mt19937 rng(1234);
    for (int round = 0; round < 2000; ++round) {
        FrameDecoder d(4096);
        std::vector<uint8_t> junk(rng() % 600);
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        if (round % 2) junk.insert(junk.begin(), {0x10, 0x00, 0x00, 0x00});  // plausible length
        size_t at = 0;
        while (at < junk.size()) {
            size_t n = std::min<size_t>(1 + rng() % 64, junk.size() - at);
            auto st = d.feed(Bytes(junk.data() + at, n), [](Bytes p) {
                CHECK(p.size > 0);
                CHECK(p.size <= 4096);
                return Status();
            });
            at += n;
            CHECK(d.buffered() <= kFrameHeaderBytes + 4096);
            if (!st.ok()) {
                bool expected = st.error().code == Errc::TooLarge || st.error().code == Errc::Protocol;
                CHECK(expected);
                break;
            }
        }
    }
}
