#include "wire/messages.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
#include <cstring>

#include "wire/bounds.h"

namespace possync::wire {

namespace {

// Our schema nests at most Frame > ChangeModel > changes > Change > key: depth 5.
constexpr flatbuffers::uoffset_t kMaxDepth = 16;
// Tables a payload may hold: every honest table (a Change with its offsets and key vector)
// takes more than 16 bytes, so the verifier's work grows with the payload's size only.
constexpr size_t kMinBytesPerTable = 16;
constexpr flatbuffers::uoffset_t kMinTables = 64;

possync::Error corrupt(std::string reason) {
    return makeError(Errc::Corrupt, std::move(reason));
}

// The reason a string breaks its bound, or "" when it keeps it. Never quotes the string:
// the message is logged, and the string is what must not be.
std::string idProblem(const char* field, const flatbuffers::String* s) {
    std::string_view text = textOf(s);
    if (text.size() > kMaxIdBytes)
        return std::string(field) + " of " + std::to_string(text.size()) + " bytes (at most " +
               std::to_string(kMaxIdBytes) + ")";
    if (!isIdText(text)) return std::string(field) + " holds control characters";
    return {};
}

std::string lengthProblem(const char* field, const flatbuffers::String* s, size_t max) {
    size_t n = s ? s->size() : 0;
    if (n <= max) return {};
    return std::string(field) + " of " + std::to_string(n) + " bytes (at most " + std::to_string(max) + ")";
}

std::vector<uint8_t> finish(flatbuffers::FlatBufferBuilder& fbb, Message type,
                            flatbuffers::Offset<void> message) {
    fbb.Finish(CreateFrame(fbb, type, message), FrameIdentifier());
    return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

}  // namespace

Result<const Frame*> verifyFrame(Bytes payload, size_t maxTables) {
    constexpr size_t kMinBytes = 2 * sizeof(flatbuffers::uoffset_t);  // root offset + identifier
    if (payload.data == nullptr || payload.size < kMinBytes)
        return corrupt("frame of " + std::to_string(payload.size) + " bytes is too short for a FlatBuffer");
    if (payload.size >= FLATBUFFERS_MAX_BUFFER_SIZE)
        return corrupt("frame of " + std::to_string(payload.size) + " bytes is over the FlatBuffers limit");
    if (!FrameBufferHasIdentifier(payload.data))
        return corrupt("wrong file identifier '" +
                       printable(Bytes(payload.data + sizeof(flatbuffers::uoffset_t), 4)) + "' (expected '" +
                       FrameIdentifier() + "')");
    flatbuffers::Verifier::Options options;
    options.max_depth = kMaxDepth;
    options.max_tables =
        maxTables
            ? static_cast<flatbuffers::uoffset_t>(std::min<size_t>(maxTables, payload.size))
            : std::max(kMinTables, static_cast<flatbuffers::uoffset_t>(payload.size / kMinBytesPerTable));
    flatbuffers::Verifier verifier(payload.data, payload.size, options);
    if (!VerifyFrameBuffer(verifier)) return corrupt("frame failed FlatBuffers verification");
    const Frame* frame = GetFrame(payload.data);
    Message type = frame->message_type();
    if (type == Message::NONE) return corrupt("frame holds no message");
    if (type > Message::MAX)
        return corrupt("unknown message type " + std::to_string(static_cast<unsigned>(type)));
    if (frame->message() == nullptr)
        return corrupt(std::string("frame of type ") + messageTypeName(type) + " has no message table");
    POSSYNC_TRY(checkStrings(frame));
    return frame;
}

Message peekMessageType(Bytes payload) {
    auto u32 = [&](size_t at, uint32_t& out) {
        if (at > payload.size || payload.size - at < 4) return false;
        std::memcpy(&out, payload.data + at, 4);
        out = flatbuffers::EndianScalar(out);
        return true;
    };
    uint32_t root = 0, soff = 0;
    if (!u32(0, root) || !u32(root, soff)) return Message::NONE;
    int64_t vt = int64_t(root) - int64_t(static_cast<int32_t>(soff));
    if (vt < 0 || uint64_t(vt) + 4 > payload.size) return Message::NONE;
    uint16_t vtSize = 0, field = 0;
    std::memcpy(&vtSize, payload.data + vt, 2);
    vtSize = flatbuffers::EndianScalar(vtSize);
    // Frame's field 0 (message_type) sits at vtable offset 4.
    if (vtSize < 6 || uint64_t(vt) + 6 > payload.size) return Message::NONE;
    std::memcpy(&field, payload.data + vt + 4, 2);
    field = flatbuffers::EndianScalar(field);
    if (field == 0 || uint64_t(root) + field >= payload.size) return Message::NONE;
    return static_cast<Message>(payload.data[root + field]);
}

Result<const Frame*> verifyFromSlave(Bytes payload) {
    bool request = peekMessageType(payload) == Message::WriteRequest;
    auto f = verifyFrame(payload, request ? 0 : kFromSlaveMaxTables);
    if (f && request != ((*f)->message_type() == Message::WriteRequest))
        return corrupt("frame whose message type changed under verification");
    return f;
}

Status checkStrings(const Frame* frame) {
    std::string problem;
    switch (frame->message_type()) {
        case Message::Hello: {
            const Hello* h = frame->message_as_Hello();
            problem = idProblem("store id", h->store_id());
            if (problem.empty()) problem = idProblem("device id", h->device_id());
            break;
        }
        case Message::Welcome: {
            const Welcome* w = frame->message_as_Welcome();
            problem = idProblem("device id", w->device_id());
            if (problem.empty()) problem = lengthProblem("refusal reason", w->reason(), kMaxReasonBytes);
            if (problem.empty() && w->lineage() && w->lineage()->size() > kMaxLineage)
                problem = "lineage of " + std::to_string(w->lineage()->size()) + " generations (at most " +
                          std::to_string(kMaxLineage) + ")";
            break;
        }
        case Message::Error:
            problem = lengthProblem("error text", frame->message_as_Error()->text(), kMaxReasonBytes);
            break;
        case Message::ChangeModel: {
            // One pass over strings the verifier has just walked: cheap next to verification.
            const ChangeModel* cm = frame->message_as_ChangeModel();
            if (const auto* changes = cm->changes())
                for (const Change* c : *changes)
                    if (problem.empty())
                        problem = lengthProblem("table name", c->table(), kMaxTableNameBytes);
            if (const auto* tables = cm->tables())
                for (const flatbuffers::String* t : *tables)
                    if (problem.empty()) problem = lengthProblem("table name", t, kMaxTableNameBytes);
            if (const Origin* o = cm->origin(); o && problem.empty()) {
                problem = idProblem("origin device id", o->device_id());
                if (problem.empty())
                    problem = lengthProblem("rejection reason", o->reason(), kMaxReasonBytes);
            }
            break;
        }
        case Message::WriteRequest: {
            const WriteRequest* r = frame->message_as_WriteRequest();
            problem = idProblem("device id", r->device_id());
            if (const auto* changes = r->changes())
                for (const Change* c : *changes)
                    if (problem.empty())
                        problem = lengthProblem("table name", c->table(), kMaxTableNameBytes);
            if (const auto* conditions = r->conditions())
                for (const Condition* c : *conditions)
                    if (problem.empty())
                        problem = lengthProblem("table name", c->table(), kMaxTableNameBytes);
            break;
        }
        case Message::WriteResult:
            problem =
                lengthProblem("rejection reason", frame->message_as_WriteResult()->reason(), kMaxReasonBytes);
            break;
        default: break;
    }
    if (problem.empty()) return {};
    return corrupt(std::string(messageTypeName(frame)) + " with a " + problem);
}

std::vector<uint8_t> buildWriteResult(uint64_t requestId, WriteStatus status, uint64_t seq,
                                      std::string_view reason) {
    flatbuffers::FlatBufferBuilder fbb(128);
    std::string_view why = clipUtf8(reason, kMaxReasonBytes);
    auto text = why.empty() ? 0 : fbb.CreateString(why.data(), why.size());
    WriteResultBuilder b(fbb);
    b.add_request_id(requestId);
    b.add_status(status);
    b.add_seq(seq);
    if (!why.empty()) b.add_reason(text);
    return finish(fbb, Message::WriteResult, b.Finish().Union());
}

const char* messageTypeName(Message type) {
    if (type > Message::MAX) return "?";
    return EnumNameMessage(type);
}

const char* messageTypeName(const Frame* frame) {
    return frame ? messageTypeName(frame->message_type()) : "?";
}

const char* errorCodeName(ErrorCode code) {
    const char* name = EnumNameErrorCode(code);
    return name && *name ? name : "?";
}

std::vector<uint8_t> buildHello(const HelloFields& h) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto store = fbb.CreateString(h.storeId.data(), h.storeId.size());
    auto device = fbb.CreateString(h.deviceId.data(), h.deviceId.size());
    HelloBuilder b(fbb);
    b.add_protocol_version(h.protocolVersion);
    b.add_store_id(store);
    b.add_device_id(device);
    b.add_state(h.state);
    b.add_position(&h.position);
    b.add_accept_new_generation(h.acceptNewGeneration);
    b.add_max_frame(h.maxFrame);
    b.add_max_message(h.maxMessage);
    if (h.term) b.add_term(h.term);
    return finish(fbb, Message::Hello, b.Finish().Union());
}

std::vector<uint8_t> buildWelcome(const WelcomeFields& w) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto device = fbb.CreateString(w.deviceId.data(), w.deviceId.size());
    flatbuffers::Offset<flatbuffers::Vector<const Position*>> lineage;
    if (!w.lineage.empty()) lineage = fbb.CreateVectorOfStructs(w.lineage);
    WelcomeBuilder b(fbb);
    b.add_device_id(device);
    b.add_generation(w.generation);
    b.add_head_seq(w.headSeq);
    b.add_mode(w.mode);
    b.add_heartbeat_ms(w.heartbeatMs);
    b.add_max_frame(w.maxFrame);
    b.add_max_message(w.maxMessage);
    Position at;
    if (w.digest) {
        at = Position(w.digest->generation, w.digest->seq);
        b.add_digest_at(&at);
        b.add_digest(w.digest->digest);
    }
    if (w.lastRequest) b.add_last_request(w.lastRequest);
    if (w.term) b.add_term(w.term);
    if (lineage.o) b.add_lineage(lineage);
    return finish(fbb, Message::Welcome, b.Finish().Union());
}

std::vector<uint8_t> buildRefusal(std::string_view deviceId, ErrorCode code, std::string_view reason) {
    flatbuffers::FlatBufferBuilder fbb(256);
    auto device = fbb.CreateString(deviceId.data(), deviceId.size());
    reason = clipUtf8(reason, kMaxReasonBytes);  // the peer refuses a longer one
    auto text = fbb.CreateString(reason.data(), reason.size());
    WelcomeBuilder b(fbb);
    b.add_device_id(device);
    b.add_refused(true);
    b.add_code(code);
    b.add_reason(text);
    return finish(fbb, Message::Welcome, b.Finish().Union());
}

std::vector<uint8_t> buildAck(Position position, bool full, uint32_t chunk) {
    flatbuffers::FlatBufferBuilder fbb(64);
    AckBuilder b(fbb);
    b.add_position(&position);
    b.add_full(full);
    b.add_chunk(chunk);
    return finish(fbb, Message::Ack, b.Finish().Union());
}

std::vector<uint8_t> buildPing(uint64_t timeMs, uint64_t headSeq, std::optional<DigestAt> digest) {
    flatbuffers::FlatBufferBuilder fbb(96);
    Position at;
    if (digest) at = Position(digest->generation, digest->seq);
    auto ping = CreatePing(fbb, timeMs, headSeq, digest ? &at : nullptr, digest ? digest->digest : 0);
    return finish(fbb, Message::Ping, ping.Union());
}

std::vector<uint8_t> buildPong(uint64_t echoMs, uint64_t timeMs, uint64_t headSeq) {
    flatbuffers::FlatBufferBuilder fbb(64);
    return finish(fbb, Message::Pong, CreatePong(fbb, echoMs, timeMs, headSeq).Union());
}

std::vector<uint8_t> buildError(ErrorCode code, std::string_view text) {
    flatbuffers::FlatBufferBuilder fbb(128);
    text = clipUtf8(text, kMaxReasonBytes);  // the peer refuses a longer one
    auto t = fbb.CreateString(text.data(), text.size());
    return finish(fbb, Message::Error, CreateError(fbb, code, t).Union());
}

}  // namespace possync::wire
