#include "wire/change_model.h"

#include <string>

#include "wire/bounds.h"

namespace possync::wire {

ChangeModelWriter::ChangeModelWriter(size_t initialBytes) : fbb_(initialBytes) {}

void ChangeModelWriter::reset() {
    fbb_.Clear();
    changes_.clear();
    finished_ = false;
}

void ChangeModelWriter::add(std::string_view table, Op op, Bytes key, Bytes value) {
    if (finished_) reset();
    auto name = fbb_.CreateSharedString(table.data(), table.size());
    auto k = fbb_.CreateVector(key.data, key.size);
    // PUT carries the value, ADD its 8-byte delta (a request's); DEL and CLEAR carry none.
    const bool hasValue = op == Op::PUT || op == Op::ADD;
    flatbuffers::Offset<flatbuffers::Vector<uint8_t>> v;
    if (hasValue) v = fbb_.CreateVector(value.data, value.size);
    ChangeBuilder cb(fbb_);
    cb.add_table(name);
    cb.add_key(k);
    if (hasValue) cb.add_value(v);
    cb.add_op(op);
    changes_.push_back(cb.Finish());
}

void ChangeModelWriter::put(std::string_view table, Bytes key, Bytes value) {
    add(table, Op::PUT, key, value);
}

void ChangeModelWriter::del(std::string_view table, Bytes key) {
    add(table, Op::DEL, key, {});
}

void ChangeModelWriter::clear(std::string_view table) {
    add(table, Op::CLEAR, {}, {});
}

flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<Change>>> ChangeModelWriter::changesVector() {
    return fbb_.CreateVector(changes_);
}

Bytes ChangeModelWriter::finishIncremental(uint64_t generation, uint64_t firstSeq, uint64_t lastSeq,
                                           const OriginFields* origin) {
    auto vec = fbb_.CreateVector(changes_);
    flatbuffers::Offset<Origin> from;
    if (origin) {
        auto device = fbb_.CreateString(origin->deviceId.data(), origin->deviceId.size());
        std::string_view why = clipUtf8(origin->reason, kMaxReasonBytes);
        auto reason = why.empty() ? 0 : fbb_.CreateString(why.data(), why.size());
        OriginBuilder ob(fbb_);
        ob.add_device_id(device);
        ob.add_request_id(origin->requestId);
        ob.add_status(origin->status);
        if (!why.empty()) ob.add_reason(reason);
        from = ob.Finish();
    }
    ChangeModelBuilder cm(fbb_);
    cm.add_flag(SyncMode::INCREMENTAL);
    cm.add_generation(generation);
    cm.add_first_seq(firstSeq);
    cm.add_last_seq(lastSeq);
    cm.add_changes(vec);
    if (origin) cm.add_origin(from);
    auto model = cm.Finish();
    fbb_.Finish(CreateFrame(fbb_, Message::ChangeModel, model.Union()), FrameIdentifier());
    finished_ = true;
    return Bytes(fbb_.GetBufferPointer(), fbb_.GetSize());
}

Bytes ChangeModelWriter::finishFull(uint64_t generation, uint64_t readSeq, uint32_t chunk, bool lastChunk,
                                    const std::vector<std::string>& tables,
                                    std::optional<uint64_t> snapshotRecords) {
    auto vec = fbb_.CreateVector(changes_);
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> names;
    if (!tables.empty()) names = fbb_.CreateVectorOfStrings(tables);
    ChangeModelBuilder cm(fbb_);
    cm.add_flag(SyncMode::FULL);
    cm.add_generation(generation);
    cm.add_first_seq(readSeq);
    cm.add_last_seq(readSeq);
    cm.add_snapshot_seq(readSeq);
    cm.add_chunk(chunk);
    cm.add_last_chunk(lastChunk);
    cm.add_changes(vec);
    if (!tables.empty()) cm.add_tables(names);
    if (snapshotRecords) cm.add_snapshot_records(*snapshotRecords);
    auto model = cm.Finish();
    fbb_.Finish(CreateFrame(fbb_, Message::ChangeModel, model.Union()), FrameIdentifier());
    finished_ = true;
    return Bytes(fbb_.GetBufferPointer(), fbb_.GetSize());
}

void RequestWriter::condition(std::string_view table, Bytes key, Require require, uint64_t hash) {
    auto& fbb = changes_.builder();
    auto name = fbb.CreateSharedString(table.data(), table.size());
    auto k = fbb.CreateVector(key.data, key.size);
    ConditionBuilder cb(fbb);
    cb.add_table(name);
    cb.add_key(k);
    cb.add_require(require);
    if (require == Require::VALUE_HASH) cb.add_hash(hash);
    conditions_.push_back(cb.Finish());
}

Bytes RequestWriter::finish(std::string_view deviceId, uint64_t requestId, uint64_t generation,
                            uint64_t createdMs) {
    auto& fbb = changes_.builder();
    auto changes = changes_.changesVector();
    auto conditions = fbb.CreateVector(conditions_);
    auto device = fbb.CreateString(deviceId.data(), deviceId.size());
    WriteRequestBuilder rb(fbb);
    rb.add_device_id(device);
    rb.add_request_id(requestId);
    rb.add_generation(generation);
    rb.add_created_ms(createdMs);
    rb.add_conditions(conditions);
    rb.add_changes(changes);
    auto request = rb.Finish();
    fbb.Finish(CreateFrame(fbb, Message::WriteRequest, request.Union()), FrameIdentifier());
    changes_.markFinished();
    return Bytes(fbb.GetBufferPointer(), fbb.GetSize());
}

void RequestWriter::reset() {
    changes_.reset();
    conditions_.clear();
}

Status checkSeqFields(const ChangeModel* cm) {
    const uint64_t first = cm->first_seq(), last = cm->last_seq(), snapshot = cm->snapshot_seq();
    auto refuse = [&](const char* what) -> Status {
        return makeError(Errc::Corrupt, std::string(what) + " (first_seq " + std::to_string(first) +
                                            ", last_seq " + std::to_string(last) + ", snapshot_seq " +
                                            std::to_string(snapshot) + ")");
    };
    if (cm->flag() == SyncMode::FULL) {
        if (first != snapshot || last != snapshot)
            return refuse("FULL chunk whose seq range is not its snapshot_seq");
        return {};
    }
    if (first != last) return refuse("INCREMENTAL change model claiming a range other than one transaction");
    if (first == 0) return refuse("INCREMENTAL change model for seq 0");
    if (snapshot != 0) return refuse("INCREMENTAL change model with a snapshot_seq");
    return {};
}

}  // namespace possync::wire
