// Wire messages: verification of received payloads and builders for every message but
// ChangeModel (change_model.h), plus small read helpers.
//
// Convention: a "payload" is one complete `Frame` FlatBuffer with identifier "PSY1",
// WITHOUT the frame header (the same bytes ChangeModelWriter returns and the master's log
// stores). frame.h adds the header (length and checksums): encodeFrame(), or
// appendFrameHeader() plus a vectored write.
//
// Reading: verify once with verifyFrame(), then read the generated accessors in place
// (frame->message_as_Hello()->store_id(), ...). Payloads must stay alive and be 8-byte
// aligned while read (FrameDecoder hands them out that way).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

#include "possync_generated.h"

namespace possync::wire {

// Verifies `payload` as a Frame: size, identifier "PSY1", the FlatBuffers Verifier
// (bounds, offsets, nesting, table count), and a known, present union message.
// Errc::Corrupt with the reason ("wrong file identifier ...", "frame holds no message",
// "unknown message type 12", "buffer failed verification") otherwise.
// Then checkStrings(): a string over its bound (bounds.h) is Errc::Corrupt too.
// `maxTables` bounds the verifier's work from what the sender may send at all (0: from the
// payload's size, for change models): a frame whose offsets point a million times at one table
// costs one table count, not a million table checks.
Result<const Frame*> verifyFrame(Bytes payload, size_t maxTables = 0);
// What a slave sends (Hello, Ack, Ping, Pong, Error, Fragment) is a Frame and one message table.
inline constexpr size_t kFromSlaveMaxTables = 16;
// A frame from a slave: verified with kFromSlaveMaxTables, except a WriteRequest (a
// transaction's changes: one table each), which gets the size-proportional budget every
// master frame gets. The message type is read before verification with bounds checks only, so
// a frame cannot claim WriteRequest to escape the small budget and then be something else.
Result<const Frame*> verifyFromSlave(Bytes payload);
// The message type of an unverified payload, read with bounds checks (NONE when unreadable).
Message peekMessageType(Bytes payload);
// The strings of a verified frame against bounds.h, per message type: Hello's store and
// device ids, Welcome's device id and reason, Error's text, ChangeModel's table names.
// Errc::Corrupt naming the field and its length (never its text) when one is over.
Status checkStrings(const Frame* frame);

// "Hello", "Welcome", ..., "NONE" for a frame without message; "?" for a null frame.
const char* messageTypeName(const Frame* frame);
const char* messageTypeName(Message type);
const char* errorCodeName(ErrorCode code);

// A FlatBuffers string as a view ("" when absent).
inline std::string_view textOf(const flatbuffers::String* s) {
    return s ? std::string_view(s->c_str(), s->size()) : std::string_view();
}
// A position field that may be absent (absent = generation 0, seq 0).
inline Position positionOf(const Position* p) {
    return p ? *p : Position(0, 0);
}

// A master's combined digest of its watched tables (XOR of the per-table rolling digests,
// store/digest.h) as of one position: what Welcome and the master's Pings may carry.
struct DigestAt {
    uint64_t generation = 0;
    uint64_t seq = 0;
    uint64_t digest = 0;
};
// The digest a Welcome or Ping carries, if any.
template <class T>
std::optional<DigestAt> digestOf(const T* message) {
    if (!message || !message->digest_at()) return std::nullopt;
    return DigestAt{message->digest_at()->generation(), message->digest_at()->seq(), message->digest()};
}

struct HelloFields {
    uint32_t protocolVersion = 0;
    std::string_view storeId;
    std::string_view deviceId;
    SlaveState state = SlaveState::STARTING;
    Position position{0, 0};
    bool acceptNewGeneration = false;
    uint32_t maxFrame = 0;    // this slave's frame limit (0: not said)
    uint64_t maxMessage = 0;  // the largest message it reassembles (0: not said)
    uint64_t term = 0;        // the highest failover term it has seen
};

struct WelcomeFields {
    std::string_view deviceId;
    uint64_t generation = 0;
    uint64_t headSeq = 0;
    SyncMode mode = SyncMode::FULL;
    uint32_t heartbeatMs = 0;
    uint32_t maxFrame = 0;
    uint64_t maxMessage = 0;
    std::optional<DigestAt> digest;  // the master's digest at a position (none: not sent)
    uint64_t lastRequest = 0;        // the slave device's last request the master handled
    uint64_t term = 0;               // the master's failover term
    std::vector<Position> lineage;   // (parent generation, fork seq), newest first; <= kMaxLineage
};

// Builders: each returns one complete payload (see the convention above). Reasons and
// error texts longer than kMaxReasonBytes (bounds.h) are clipped; ids must keep their bound.
std::vector<uint8_t> buildHello(const HelloFields& hello);
std::vector<uint8_t> buildWelcome(const WelcomeFields& welcome);
// A Welcome that refuses the slave (refused = true) with a code and a reason for people.
std::vector<uint8_t> buildRefusal(std::string_view deviceId, ErrorCode code, std::string_view reason);
std::vector<uint8_t> buildAck(Position position, bool full = false, uint32_t chunk = 0);
// `digest`: the master's digest at a position (DigestAt), on a master's Pings.
std::vector<uint8_t> buildPing(uint64_t timeMs, uint64_t headSeq, std::optional<DigestAt> digest = {});
std::vector<uint8_t> buildPong(uint64_t echoMs, uint64_t timeMs, uint64_t headSeq);
std::vector<uint8_t> buildError(ErrorCode code, std::string_view text);
// The outcome of a slave's WriteRequest (reason: REJECTED only, clipped).
std::vector<uint8_t> buildWriteResult(uint64_t requestId, WriteStatus status, uint64_t seq,
                                      std::string_view reason);

}  // namespace possync::wire
