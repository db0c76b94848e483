// Framing of the wire protocol (DESIGN.md §3): each frame is a 4-byte little-endian
// payload length followed by the payload (one `Frame` FlatBuffer, see messages.h).
//
// FrameDecoder turns a TCP byte stream into payloads. It hands each payload to the
// caller without copying when the payload lies whole and 8-byte aligned inside the bytes
// just received; otherwise (split across reads, or misaligned) it hands out one copy
// from its own aligned buffer. Alignment matters because FlatBuffers reads scalars in
// place: a misaligned 64-bit load faults on some ARM cores and is undefined behaviour.
// The decoder's buffer never holds more than one frame (header + at most maxFrameBytes),
// so memory per link is bounded by the frame limit plus one read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace possync::wire {

inline constexpr size_t kFrameHeaderBytes = 4;
// The default largest payload a peer may send (DESIGN.md §3); configurable per link.
inline constexpr uint32_t kDefaultMaxFrameBytes = 16u << 20;
// Payloads handed to onFrame start at an address that is a multiple of this.
inline constexpr size_t kPayloadAlignment = 8;

// Appends the 4-byte little-endian length prefix of a payload of `payloadBytes` bytes.
void appendFrameHeader(std::vector<uint8_t>& out, uint32_t payloadBytes);
// Header + payload in one new buffer. (To send without this copy, write a 4-byte header
// buffer and the payload as two buffers of one vectored write.)
std::vector<uint8_t> encodeFrame(Bytes payload);

class FrameDecoder final {
public:
    // Called for each complete payload; the bytes are valid only during the call. A
    // non-ok return stops decoding: feed() returns that error.
    using FrameCallback = std::function<Status(Bytes payload)>;

    explicit FrameDecoder(uint32_t maxFrameBytes = kDefaultMaxFrameBytes);
    ~FrameDecoder();
    FrameDecoder(const FrameDecoder&) = delete;
    FrameDecoder& operator=(const FrameDecoder&) = delete;

    // Consumes `data` (any split of the stream), calling onFrame for every frame it
    // completes, in order. Errors, after which the decoder refuses further input until
    // reset() (the link is to be closed):
    //   Errc::TooLarge  a length prefix over maxFrameBytes (found before buffering it),
    //   Errc::Protocol  a zero length prefix, or feed() after an earlier error,
    //   whatever onFrame returned.
    // onFrame must not destroy the decoder: an owner that drops the link inside onFrame
    // retires the decoder and frees it on a later loop turn (deferred deletion).
    Status feed(Bytes data, const FrameCallback& onFrame);

    // Bytes held from an incomplete frame (header and/or payload).
    size_t buffered() const { return headerHave_ + payloadHave_; }
    // Capacity of the decoder's own buffer (for tests of the memory bound).
    size_t bufferCapacity() const { return capacityWords_ * sizeof(uint64_t); }
    uint32_t maxFrameBytes() const { return maxFrameBytes_; }
    uint64_t framesDecoded() const { return frames_; }

    // Forgets any partial frame and a previous error (a new link).
    void reset();

private:
    Status checkLength(uint32_t length);
    Status fail(possync::Error error);  // possync::Error, not the wire::Error table
    void reserve(size_t bytes);
    uint8_t* storage() { return reinterpret_cast<uint8_t*>(storage_.get()); }

    uint32_t maxFrameBytes_;
    uint8_t header_[kFrameHeaderBytes] = {};
    size_t headerHave_ = 0;                // bytes of header_ received
    uint32_t payloadLen_ = 0;              // valid when headerHave_ == kFrameHeaderBytes
    size_t payloadHave_ = 0;               // bytes of the payload in storage_
    std::unique_ptr<uint64_t[]> storage_;  // uint64_t: 8-byte aligned payload copies
    size_t capacityWords_ = 0;
    uint64_t frames_ = 0;
    bool failed_ = false;
};

}  // namespace possync::wire
