// The bounds of wire/bounds.h, checked by verifyFrame: a peer's oversized or control-laden string
// is refused as Corrupt before anything logs, stores or compares it, and the refusal's own
// message never carries the string.
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>

#include <string>
#include <vector>

#include "possync_config.h"
#include "wire/bounds.h"
#include "wire/change_model.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::wire;

namespace {

Result<const Frame*> verify(const std::vector<uint8_t>& payload) {
    return verifyFrame(Bytes(payload.data(), payload.size()));
}

// Refused as Corrupt, with a short reason that names `field` and does not quote the string.
void checkRefused(const std::vector<uint8_t>& payload, const std::string& field) {
    auto r = verify(payload);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::Corrupt);
    CHECK_MESSAGE(r.error().message.find(field) != std::string::npos, r.error().message);
    CHECK(r.error().message.size() < 160);
    CHECK(r.error().message.find("xxxxxxxx") == std::string::npos);
}

std::vector<uint8_t> hello(std::string_view store, std::string_view device) {
    return buildHello({POSSYNC_PROTOCOL_VERSION, store, device, SlaveState::STARTING, Position(0, 0), false});
}

// A Welcome or Error built by hand: our builders clip, a hostile peer does not.
std::vector<uint8_t> rawRefusal(const std::string& reason) {
    flatbuffers::FlatBufferBuilder fbb;
    auto device = fbb.CreateString("master-1");
    auto text = fbb.CreateString(reason);
    WelcomeBuilder b(fbb);
    b.add_device_id(device);
    b.add_refused(true);
    b.add_code(ErrorCode::WRONG_STORE);
    b.add_reason(text);
    fbb.Finish(CreateFrame(fbb, Message::Welcome, b.Finish().Union()), FrameIdentifier());
    return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

std::vector<uint8_t> rawError(const std::string& text) {
    flatbuffers::FlatBufferBuilder fbb;
    auto t = fbb.CreateString(text);
    fbb.Finish(CreateFrame(fbb, Message::Error, CreateError(fbb, ErrorCode::PROTOCOL, t).Union()),
               FrameIdentifier());
    return std::vector<uint8_t>(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
}

std::vector<uint8_t> changeModelWithTable(const std::string& table) {
    ChangeModelWriter w;
    w.put(table, Bytes("k"), Bytes("v"));
    Bytes b = w.finishIncremental(7, 1, 1);
    return std::vector<uint8_t>(b.data, b.data + b.size);
}

}  // namespace

TEST_CASE("limits: a Welcome's lineage is bounded") {
    WelcomeFields w{"m", 1, 0, SyncMode::FULL, 500};
    w.lineage.assign(kMaxLineage, Position(7, 1));
    CHECK(verify(buildWelcome(w)).ok());
    w.lineage.push_back(Position(7, 1));
    checkRefused(buildWelcome(w), "lineage of 17 generations (at most 16)");
}

TEST_CASE("limits: a Hello with an 8 MiB store id is refused without quoting it") {
    const std::string huge(8u << 20, 'x');
    checkRefused(hello(huge, "till-1"), "store id of 8388608 bytes");
    checkRefused(hello("shop", huge), "device id of 8388608 bytes");
    checkRefused(hello(std::string(kMaxIdBytes + 1, 'x'), "till-1"), "store id");
    checkRefused(hello("shop\nfake log line", "till-1"), "store id holds control characters");
    checkRefused(hello("shop", "till\x1b[2J"), "device id holds control characters");
    // At the bound, and UTF-8, are fine.
    CHECK(verify(hello(std::string(kMaxIdBytes, 's'), std::string(kMaxIdBytes, 'd'))).ok());
    CHECK(verify(hello("caf\xc3\xa9", "till-1")).ok());
}

TEST_CASE("limits: refusal reasons and error texts are bounded; our builders clip theirs") {
    const std::string huge(8u << 20, 'x');
    checkRefused(rawRefusal(huge), "refusal reason of 8388608 bytes");
    checkRefused(rawError(huge), "error text of 8388608 bytes");
    CHECK(verify(rawRefusal(std::string(kMaxReasonBytes, 'r'))).ok());
    checkRefused(rawRefusal(std::string(kMaxReasonBytes + 1, 'x')), "refusal reason");

    auto refusal = buildRefusal("master-1", ErrorCode::WRONG_STORE, std::string(1000, 'r'));
    auto r = verify(refusal);
    REQUIRE(r.ok());
    CHECK(textOf((*r)->message_as_Welcome()->reason()) == std::string(kMaxReasonBytes, 'r'));
    // Clipping never splits a UTF-8 character.
    std::string accents;
    while (accents.size() < 2 * kMaxReasonBytes) accents += "\xc3\xa9";
    auto err = buildError(ErrorCode::PROTOCOL, "a" + accents);
    auto e = verify(err);
    REQUIRE(e.ok());
    CHECK(textOf((*e)->message_as_Error()->text()) == "a" + accents.substr(0, kMaxReasonBytes - 2));
    CHECK(clipUtf8("short", 3) == "sho");
    CHECK(clipUtf8("short", 10) == "short");
}

TEST_CASE("limits: a change model's table names keep the store's limit") {
    CHECK(verify(changeModelWithTable(std::string(kMaxTableNameBytes, 't'))).ok());
    checkRefused(changeModelWithTable(std::string(kMaxTableNameBytes + 1, 'x')), "table name of 256 bytes");
    checkRefused(changeModelWithTable(std::string(1u << 20, 'x')), "table name");
}
