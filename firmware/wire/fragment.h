// Fragments: a message larger than the receiver's frame limit travels as several frames.
//
// --max-frame bounds what one frame may hold (a transport limit: the decoder's buffer, the
// budget per read). It must never bound what a board may commit: a transaction's change model,
// or a FULL chunk holding one big record, can be larger than the peer's frame limit. Such a
// payload is cut into `Fragment` messages, each a frame within the limit; the receiver joins
// them in a Reassembler and then verifies and handles the whole payload exactly as if it had
// arrived in one frame. The largest message a board reassembles is bounded (kMaxMessageBytes,
// said in Hello/Welcome), and so is what a board lets a writer commit (the same bound), so
// every committed transaction can be sent.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

#include "possync_generated.h"

namespace possync::wire {

// The largest message (one Frame payload, e.g. one transaction's change model) a board
// reassembles from Fragments and lets a writer commit. FlatBuffers itself stops at 2 GiB; a
// 32-bit board's address space is the tighter bound there.
inline constexpr uint64_t kMaxMessageBytes = sizeof(void*) >= 8 ? (uint64_t(1) << 30) : (uint64_t(256) << 20);
// Room a Fragment payload needs besides its data (FlatBuffers tables, offsets, padding).
inline constexpr size_t kFragmentOverheadBytes = 128;

// Data bytes per Fragment so that each Fragment payload fits a frame of `maxFrameBytes`.
size_t fragmentDataBytes(uint32_t maxFrameBytes);

// One Fragment payload: bytes [offset, offset + data.size) of a message of `messageBytes`.
std::vector<uint8_t> buildFragment(uint64_t messageBytes, uint64_t offset, Bytes data);

// Joins the Fragments of one message at a time. The buffer grows with the data that arrived
// (never by what a header claims), holds the message 8-byte aligned (FlatBuffers reads scalars
// in place), and is kept for the next message.
class Reassembler final {
public:
    explicit Reassembler(uint64_t maxMessageBytes = kMaxMessageBytes) : maxMessageBytes_(maxMessageBytes) {}
    Reassembler(const Reassembler&) = delete;
    Reassembler& operator=(const Reassembler&) = delete;

    // Takes the next Fragment (already verified as part of its Frame). Returns the whole
    // message once its last piece is in (valid until the next feed() or reset()), or empty
    // Bytes while more is needed. Errors (the message is dropped; the link is to be closed):
    //   Errc::TooLarge  message_bytes over the limit,
    //   Errc::Corrupt   an empty piece, a piece that does not continue the message (offset
    //                   or message_bytes differ from what came before), or that overruns it.
    Result<Bytes> feed(const Fragment* fragment);

    // A message is partly received.
    bool active() const { return have_ != 0; }
    uint64_t maxMessageBytes() const { return maxMessageBytes_; }
    // Bytes the buffer holds now (for tests of the memory bound).
    size_t bufferBytes() const { return buffer_.size() * sizeof(uint64_t); }
    // Forgets a partial message (the link was lost). The buffer, and so a message handed out
    // by feed(), stays valid.
    void reset() { have_ = total_ = 0; }
    // Gives back a buffer grown for a big message when no message is partly received (the
    // bytes of the last message handed out are then invalid).
    void release();

private:
    uint64_t maxMessageBytes_;
    uint64_t total_ = 0;            // message_bytes of the message being joined
    uint64_t have_ = 0;             // bytes received so far
    std::vector<uint64_t> buffer_;  // uint64_t: 8-byte aligned
};

}  // namespace possync::wire
