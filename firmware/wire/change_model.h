// ChangeModel frames: building them (master commits, FULL chunks) and walking them (slave apply).
//
// A ChangeModel frame is a complete `Frame` payload (identifier PSY1) whose message is a
// ChangeModel. The same bytes are the value of a possync.log entry and the payload of a wire
// frame, so the master streams log entries without rebuilding them.
#pragma once

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"

#include "possync_generated.h"

namespace possync::wire {

class ChangeModelWriter final {
public:
    explicit ChangeModelWriter(size_t initialBytes = size_t(16) * 1024);

    // Appends one change. Table names are shared within one model (CreateSharedString), so a
    // model of many changes to one table stores the name once.
    void put(std::string_view table, Bytes key, Bytes value);
    void del(std::string_view table, Bytes key);
    void clear(std::string_view table);

    size_t changeCount() const { return changes_.size(); }
    // Bytes the finished payload will have at least (what the builder holds so far).
    size_t sizeSoFar() const { return fbb_.GetSize() + changes_.size() * 4; }
    bool empty() const { return changes_.empty(); }

    // Finishes the model. The returned bytes stay valid until the next add/reset.
    Bytes finishIncremental(uint64_t generation, uint64_t firstSeq, uint64_t lastSeq);
    // A FULL chunk: readSeq is the seq this chunk was read at; `tables` (chunk 0 only) are the
    // watched tables of the snapshot, `snapshotRecords` (chunk 0 only) the records they held
    // when it was read (the slave's bound on the FULL's size).
    Bytes finishFull(uint64_t generation, uint64_t readSeq, uint32_t chunk, bool lastChunk,
                     const std::vector<std::string>& tables,
                     std::optional<uint64_t> snapshotRecords = std::nullopt);

    // Forgets all changes; keeps the allocated memory.
    void reset();

private:
    void add(std::string_view table, Op op, Bytes key, Bytes value);

    flatbuffers::FlatBufferBuilder fbb_;
    std::vector<flatbuffers::Offset<Change>> changes_;
    bool finished_ = false;
};

// The ChangeModel inside a verified Frame, or nullptr when the frame holds another message.
inline const ChangeModel* asChangeModel(const Frame* frame) {
    return frame ? frame->message_as_ChangeModel() : nullptr;
}

// Checks that a ChangeModel's seq fields describe exactly what it carries. An INCREMENTAL model
// is one committed transaction, as the master's log stores it: first_seq == last_seq >= 1 and
// no snapshot_seq. A FULL chunk is data read at one seq: first_seq == last_seq == snapshot_seq.
// Anything else (a model claiming a range it does not carry: a corrupted field, a buggy or
// hostile peer) is Errc::Corrupt naming the fields, so the receiver refuses it before applying
// a single change. Continuity with the receiver's own position is the receiver's check.
Status checkSeqFields(const ChangeModel* cm);

// Key and value of a change as borrowed bytes pointing into the frame (zero copy).
inline Bytes keyOf(const Change* c) {
    return c->key() ? Bytes(c->key()->data(), c->key()->size()) : Bytes();
}
inline Bytes valueOf(const Change* c) {
    return c->value() ? Bytes(c->value()->data(), c->value()->size()) : Bytes();
}
inline std::string_view tableOf(const Change* c) {
    return c->table() ? std::string_view(c->table()->c_str(), c->table()->size()) : std::string_view();
}

}  // namespace possync::wire
