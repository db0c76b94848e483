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

// The origin of a master's change model: a slave's forwarded WriteRequest and its outcome.
struct OriginFields {
    std::string_view deviceId;
    uint64_t requestId = 0;
    WriteStatus status = WriteStatus::COMMITTED;
    std::string_view reason;  // REJECTED; clipped to kMaxReasonBytes
};

class ChangeModelWriter final {
public:
    explicit ChangeModelWriter(size_t initialBytes = size_t(16) * 1024);

    // Appends one change. Table names are shared within one model (CreateSharedString), so a
    // model of many changes to one table stores the name once.
    void put(std::string_view table, Bytes key, Bytes value);
    void del(std::string_view table, Bytes key);
    void clear(std::string_view table);
    // Any op (WriteRequest's ADD included: RequestWriter).
    void add(std::string_view table, Op op, Bytes key, Bytes value);

    size_t changeCount() const { return changes_.size(); }
    // Bytes the finished payload will have at least (what the builder holds so far).
    size_t sizeSoFar() const { return fbb_.GetSize() + changes_.size() * 4; }
    bool empty() const { return changes_.empty(); }

    // Finishes the model. The returned bytes stay valid until the next add/reset.
    // `origin`: the model carries a forwarded request's outcome (master only).
    Bytes finishIncremental(uint64_t generation, uint64_t firstSeq, uint64_t lastSeq,
                            const OriginFields* origin = nullptr);
    // A FULL chunk: readSeq is the seq this chunk was read at; `tables` (chunk 0 only) are the
    // watched tables of the snapshot, `snapshotRecords` (chunk 0 only) the records they held
    // when it was read (the slave's bound on the FULL's size).
    Bytes finishFull(uint64_t generation, uint64_t readSeq, uint32_t chunk, bool lastChunk,
                     const std::vector<std::string>& tables,
                     std::optional<uint64_t> snapshotRecords = std::nullopt);

    // Forgets all changes; keeps the allocated memory.
    void reset();

    // The request form (RequestWriter): WriteRequest instead of ChangeModel.
    flatbuffers::FlatBufferBuilder& builder() { return fbb_; }
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<Change>>> changesVector();
    void markFinished() { finished_ = true; }

private:
    flatbuffers::FlatBufferBuilder fbb_;
    std::vector<flatbuffers::Offset<Change>> changes_;
    bool finished_ = false;
};

// A slave's WriteRequest (DESIGN.md §9): changes and conditions of one transaction, finished as
// a complete Frame payload (what the outbox stores and the link sends).
class RequestWriter final {
public:
    void change(std::string_view table, Op op, Bytes key, Bytes value) {
        changes_.add(table, op, key, value);
    }
    void condition(std::string_view table, Bytes key, Require require, uint64_t hash);
    bool empty() const { return changes_.empty() && conditions_.empty(); }
    size_t changeCount() const { return changes_.changeCount(); }
    size_t conditionCount() const { return conditions_.size(); }
    size_t sizeSoFar() const { return changes_.sizeSoFar() + conditions_.size() * 4; }
    // The bytes stay valid until the next change/condition/reset.
    Bytes finish(std::string_view deviceId, uint64_t requestId, uint64_t generation, uint64_t createdMs);
    void reset();

private:
    ChangeModelWriter changes_;
    std::vector<flatbuffers::Offset<Condition>> conditions_;
};

// The WriteRequest inside a verified Frame, or nullptr.
inline const WriteRequest* asWriteRequest(const Frame* frame) {
    return frame ? frame->message_as_WriteRequest() : nullptr;
}

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
