// Framing of the wire protocol (DESIGN.md §3, protocol version 2): each frame is a 16-byte
// header followed by the payload (one `Frame` FlatBuffer, see messages.h).
//
//   offset  bytes  field (all little-endian)
//        0      4  payload length (1 .. the receiver's frame limit)
//        4      4  XXH32 of the payload, seed 0
//        8      4  flags: 0 (reserved; a receiver refuses any other value)
//       12      4  XXH32 of header bytes 0..11, seed 0 (the header check)
//
// Why both checks: TCP's 16-bit checksum misses corrupted segments often enough on store
// networks and cheap boards, and one flipped bit in a seq field once moved a slave's position
// to 2^60. The payload checksum is verified before a single byte of the payload is parsed or
// applied. The header check is verified before the length is trusted: a corrupted length is
// refused at once instead of making the receiver wait (possibly forever, on an idle link) for
// bytes that will never come, or reserve memory for them. 16 bytes keep payloads 8-byte aligned
// in a stream of frames whose sizes are multiples of 8 (FlatBuffers pads to its largest scalar).
//
// FrameDecoder turns a TCP byte stream into payloads. It hands each payload to the
// caller without copying when the payload lies whole and 8-byte aligned inside the bytes
// just received; otherwise (split across reads, or misaligned) it hands out one copy
// from its own aligned buffer. Alignment matters because FlatBuffers reads scalars in
// place: a misaligned 64-bit load faults on some ARM cores and is undefined behaviour.
// The decoder's buffer never holds more than one frame (header + at most maxFrameBytes),
// so memory per link is bounded by the frame limit plus one read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

namespace possync::wire {

inline constexpr size_t kFrameHeaderBytes = 16;
// The default largest payload a peer may send (DESIGN.md §3); configurable per link.
inline constexpr uint32_t kDefaultMaxFrameBytes = 16u << 20;
// The largest payload accepted from a peer before its Hello (master side) or Welcome (slave
// side) is accepted. The handshake messages are small and bounded: a Hello holds two ids of at
// most 64 characters, a position and a few scalars (under 300 bytes with FlatBuffers' tables);
// a Welcome or Error holds a device id and a reason the master composes (under 1 KiB). 64 KiB
// leaves room for the handshake fields still to come (DESIGN.md §11: keys, signatures) without
// a protocol change, while an unauthenticated peer can make a board reserve at most this much
// per connection instead of --max-frame (16 MiB by default).
inline constexpr uint32_t kHandshakeMaxFrameBytes = 64u << 10;
// Payloads handed to onFrame start at an address that is a multiple of this.
inline constexpr size_t kPayloadAlignment = 8;

// XXH32 with seed 0: the checksum of a frame's payload and of its header.
uint32_t frameChecksum(Bytes data);
// Writes the kFrameHeaderBytes header of a payload of `payloadBytes` bytes whose checksum is
// `payloadChecksum`. Tests use it to craft frames with a wrong checksum or flags.
void writeFrameHeader(uint8_t* out, uint32_t payloadBytes, uint32_t payloadChecksum, uint32_t flags = 0);
// Appends the header of `payload` (its length and checksum) to `out`.
void appendFrameHeader(std::vector<uint8_t>& out, Bytes payload);
// Header + payload in one new buffer. (To send without this copy, write a header buffer and
// the payload as two buffers of one vectored write.)
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
    //   Errc::Corrupt   a header whose header check fails, or a payload whose checksum does
    //                   not match (found before onFrame sees any of it),
    //   Errc::TooLarge  a length over maxFrameBytes (found before buffering the payload),
    //   Errc::Protocol  a zero length, flags other than 0, or feed() after an earlier error,
    //   whatever onFrame returned.
    // onFrame must not destroy the decoder: an owner that drops the link inside onFrame
    // retires the decoder and frees it on a later loop turn (deferred deletion).
    Status feed(Bytes data, const FrameCallback& onFrame);

    // The limit for frames whose header is not yet complete. A link starts with
    // kHandshakeMaxFrameBytes and raises it to --max-frame once the peer's Hello (or the
    // master's Welcome) is accepted; onFrame may call this for the frames that follow.
    void setMaxFrameBytes(uint32_t maxFrameBytes) { maxFrameBytes_ = maxFrameBytes; }

    // Bytes held from an incomplete frame (header and/or payload).
    size_t buffered() const { return headerHave_ + payloadHave_; }
    // The size (header + announced payload) of the frame under way, 0 when none is: the
    // header's size while the header itself is incomplete. Sessions give a frame a deadline
    // proportional to it (a peer that trickles a frame is not alive).
    size_t partialFrameBytes() const {
        if (buffered() == 0) return 0;
        return headerHave_ < kFrameHeaderBytes ? kFrameHeaderBytes : kFrameHeaderBytes + payloadLen_;
    }
    // Capacity of the decoder's own buffer (for tests of the memory bound).
    size_t bufferCapacity() const { return capacityWords_ * sizeof(uint64_t); }
    uint32_t maxFrameBytes() const { return maxFrameBytes_; }
    uint64_t framesDecoded() const { return frames_; }

    // Forgets any partial frame and a previous error (a new link).
    void reset();

private:
    Status checkHeader(const uint8_t* header);  // sets payloadLen_ and payloadSum_
    Status checkPayload(Bytes payload);
    Status fail(possync::Error error);  // possync::Error, not the wire::Error table
    void reserve(size_t bytes);
    uint8_t* storage() { return reinterpret_cast<uint8_t*>(storage_.get()); }

    uint32_t maxFrameBytes_;
    uint8_t header_[kFrameHeaderBytes] = {};
    size_t headerHave_ = 0;                // bytes of header_ received
    uint32_t payloadLen_ = 0;              // valid when headerHave_ == kFrameHeaderBytes
    uint32_t payloadSum_ = 0;              // likewise: the payload checksum the header announced
    size_t payloadHave_ = 0;               // bytes of the payload in storage_
    std::unique_ptr<uint64_t[]> storage_;  // uint64_t: 8-byte aligned payload copies
    size_t capacityWords_ = 0;
    uint64_t frames_ = 0;
    bool failed_ = false;
};

// The limit a new link's decoder starts with: the handshake limit, or --max-frame if smaller.
inline uint32_t handshakeFrameLimit(uint64_t maxFrameBytes) {
    return static_cast<uint32_t>(std::min<uint64_t>(kHandshakeMaxFrameBytes, maxFrameBytes));
}

}  // namespace possync::wire
