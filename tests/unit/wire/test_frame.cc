// FrameDecoder and frame headers: the 16-byte header's layout and checksums, a flipped bit at
// every offset refused, splits at every byte, several frames per feed, limits (the handshake
// limit and raising it), zero-copy and alignment, errors that stop the decoder, destruction
// inside onFrame.
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

namespace {

// A header for `length` bytes of payload with checksum `sum` (valid header check).
std::vector<uint8_t> headerFor(uint32_t length, uint32_t sum = 0, uint32_t flags = 0) {
    std::vector<uint8_t> h(kFrameHeaderBytes);
    writeFrameHeader(h.data(), length, sum, flags);
    return h;
}

}  // namespace

TEST_CASE("frame header: length, XXH32 of the payload, flags 0, XXH32 of the first 12 bytes; all LE") {
    // XXH32 reference values (seed 0) from the xxHash specification's test vectors: the wire
    // contract names the function, so a peer in another language can check it.
    CHECK(frameChecksum(Bytes("")) == 0x02CC5D05u);
    CHECK(frameChecksum(Bytes("abc")) == 0x32D153FFu);

    std::vector<uint8_t> out{0xAA};
    appendFrameHeader(out, Bytes("abc"));
    REQUIRE(out.size() == 1 + kFrameHeaderBytes);
    CHECK(getLe32(out.data() + 1) == 3u);
    CHECK(getLe32(out.data() + 5) == 0x32D153FFu);
    CHECK(getLe32(out.data() + 9) == 0u);
    CHECK(getLe32(out.data() + 13) == frameChecksum(Bytes(out.data() + 1, 12)));

    auto f = encodeFrame(Bytes("hello"));
    REQUIRE(f.size() == kFrameHeaderBytes + 5);
    CHECK(std::vector<uint8_t>(f.begin(), f.begin() + kFrameHeaderBytes) ==
          headerFor(5, frameChecksum(Bytes("hello"))));
    CHECK(std::string(f.begin() + kFrameHeaderBytes, f.end()) == "hello");
    CHECK(kFrameHeaderBytes % kPayloadAlignment == 0);
}

TEST_CASE("decoder: one flipped bit anywhere in a frame is refused as corrupt, never delivered") {
    // A good frame, then the frame under test, then a good frame: the first is delivered, the
    // corrupted one and everything after it are not (the link closes).
    auto before = encodeFrame(Bytes("before"));
    auto payload = payloadOf(40, 11);
    auto frame = encodeFrame(Bytes(payload.data(), payload.size()));
    auto after = encodeFrame(Bytes("after!"));
    size_t cases = 0;
    for (size_t at = 0; at < frame.size(); ++at) {
        for (int bit = 0; bit < 8; ++bit) {
            auto bad = frame;
            bad[at] ^= uint8_t(1u << bit);
            std::vector<uint8_t> stream = before;
            stream.insert(stream.end(), bad.begin(), bad.end());
            stream.insert(stream.end(), after.begin(), after.end());
            // In one feed, and split right after the flipped byte (the slow path).
            for (size_t cut : {stream.size(), before.size() + at + 1}) {
                FrameDecoder d(1024);
                Collector c;
                auto st = d.feed(Bytes(stream.data(), cut), c.callback());
                if (st.ok()) st = d.feed(Bytes(stream.data() + cut, stream.size() - cut), c.callback());
                INFO("flipped bit " << bit << " of byte " << at << ", cut at " << cut);
                REQUIRE_FALSE(st.ok());
                // A flip in the length may also make the length over the limit or zero; the
                // header check is verified first, so it is always Corrupt here.
                CHECK(st.error().code == Errc::Corrupt);
                REQUIRE(c.got.size() == 1);
                CHECK(c.got[0] == std::vector<uint8_t>(before.begin() + kFrameHeaderBytes, before.end()));
                ++cases;
            }
        }
    }
    CHECK(cases == frame.size() * 8 * 2);
}

TEST_CASE("decoder: a payload that does not match its checksum is refused; the header check is exact") {
    auto payload = payloadOf(20, 4);
    auto h = headerFor(20, frameChecksum(Bytes(payload.data(), payload.size())) ^ 1u);
    h.insert(h.end(), payload.begin(), payload.end());
    FrameDecoder d(64);
    Collector c;
    auto st = d.feed(Bytes(h.data(), h.size()), c.callback());
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::Corrupt);
    CHECK(st.error().message.find("frame checksum mismatch over 20 bytes") == 0);
    CHECK(c.got.empty());

    // Flags other than 0 (with a valid header check) are a protocol error, not corruption.
    auto f = headerFor(20, frameChecksum(Bytes(payload.data(), payload.size())), 1);
    f.insert(f.end(), payload.begin(), payload.end());
    FrameDecoder d2(64);
    st = d2.feed(Bytes(f.data(), f.size()), c.callback());
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Errc::Protocol);
    CHECK(c.got.empty());
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
    // uint64_t storage: the buffer is 8-aligned, so a frame at +0 has its payload (after 16
    // header bytes) aligned, and a frame at +4 has it misaligned.
    std::vector<uint64_t> words(16, 0);
    auto* base = reinterpret_cast<uint8_t*>(words.data());
    auto payload = payloadOf(24, 3);
    auto frame = encodeFrame(Bytes(payload.data(), payload.size()));

    std::memcpy(base, frame.data(), frame.size());
    FrameDecoder d;
    const uint8_t* seen = nullptr;
    std::vector<uint8_t> copy;
    auto cb = [&](Bytes p) {
        seen = p.data;
        copy.assign(p.data, p.data + p.size);
        return Status();
    };
    REQUIRE(d.feed(Bytes(base, frame.size()), cb).ok());
    CHECK(seen == base + kFrameHeaderBytes);  // zero copy
    CHECK(copy == payload);

    std::memcpy(base + 4, frame.data(), frame.size());
    REQUIRE(d.feed(Bytes(base + 4, frame.size()), cb).ok());
    CHECK(seen != base + 4 + kFrameHeaderBytes);
    CHECK(reinterpret_cast<uintptr_t>(seen) % kPayloadAlignment == 0);
    CHECK(copy == payload);
}

TEST_CASE("decoder: a length over the limit is rejected from the header alone, before buffering") {
    std::vector<uint8_t> header = headerFor(1025);
    {
        FrameDecoder d(1024);
        int frames = 0;
        auto st = d.feed(Bytes(header.data(), 2), [&](Bytes) {
            ++frames;
            return Status();
        });
        REQUIRE(st.ok());
        CHECK(d.buffered() == 2);
        st = d.feed(Bytes(header.data() + 2, header.size() - 2), [&](Bytes) {
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
        std::vector<uint8_t> huge = headerFor(0xffffffffu);
        huge.insert(huge.end(), {1, 2, 3});
        auto st = d.feed(Bytes(huge.data(), huge.size()), [](Bytes) { return Status(); });
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::TooLarge);
        CHECK(d.bufferCapacity() == 0);
    }
}

TEST_CASE("decoder: zero length is a protocol error; errors are sticky until reset()") {
    FrameDecoder d(64);
    std::vector<uint8_t> bytes = headerFor(0);
    bytes.insert(bytes.end(), {5, 0, 0, 0});
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
        if (round % 2) {  // a valid header of a plausible length, then junk for a payload
            auto h = headerFor(static_cast<uint32_t>(rng() % 5000), static_cast<uint32_t>(rng()));
            junk.insert(junk.begin(), h.begin(), h.end());
        }
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
                bool expected = st.error().code == Errc::TooLarge || st.error().code == Errc::Protocol ||
                                st.error().code == Errc::Corrupt;
                CHECK(expected);
                break;
            }
        }
    }
}

TEST_CASE(
    "decoder: the handshake limit refuses a large frame before any buffering; raising it applies at once") {
    // Item 11 of issue 9: an unauthenticated peer's header announcing 16 MiB must not make the
    // board reserve 16 MiB before its Hello is accepted.
    CHECK(handshakeFrameLimit(16u << 20) == kHandshakeMaxFrameBytes);
    CHECK(handshakeFrameLimit(4096) == 4096u);
    auto big = headerFor(16u << 20);
    {
        FrameDecoder d(handshakeFrameLimit(16u << 20));
        auto st = d.feed(Bytes(big.data(), big.size()), [](Bytes) { return Status(); });
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::TooLarge);
        CHECK(d.bufferCapacity() == 0);
        CHECK(d.buffered() == 0);
    }
    {
        // A frame just over the handshake limit, fed byte by byte: refused at its last header
        // byte, and nothing past the header was ever held.
        auto over = headerFor(kHandshakeMaxFrameBytes + 1);
        FrameDecoder d(kHandshakeMaxFrameBytes);
        Status st;
        for (uint8_t b : over) {
            st = d.feed(Bytes(&b, 1), [](Bytes) { return Status(); });
            CHECK(d.bufferCapacity() == 0);
            CHECK(d.buffered() < kFrameHeaderBytes);
            if (!st.ok()) break;
        }
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Errc::TooLarge);
    }
    {
        // The Hello is accepted inside onFrame, which raises the limit: the large frame that
        // follows in the same read is accepted (it is buffered, awaiting its payload).
        auto hello = encodeFrame(Bytes("hello"));
        std::vector<uint8_t> stream = hello;
        stream.insert(stream.end(), big.begin(), big.end());
        FrameDecoder d(kHandshakeMaxFrameBytes);
        int frames = 0;
        auto st = d.feed(Bytes(stream.data(), stream.size()), [&](Bytes) {
            ++frames;
            d.setMaxFrameBytes(16u << 20);
            return Status();
        });
        REQUIRE(st.ok());
        CHECK(frames == 1);
        CHECK(d.maxFrameBytes() == 16u << 20);
        CHECK(d.buffered() == kFrameHeaderBytes);
    }
}
