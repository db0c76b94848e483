// Message builders and verifyFrame: round trips, rejection of bad buffers, mutation fuzz.
#include <doctest/doctest.h>
#include <flatbuffers/flatbuffers.h>

#include <random>
#include <string>
#include <vector>

#include "possync_config.h"
#include "wire/change_model.h"
#include "wire/frame.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::wire;

namespace {

const Frame* mustVerify(const std::vector<uint8_t>& payload) {
    auto r = verifyFrame(Bytes(payload.data(), payload.size()));
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message));
    return r.value();
}

std::vector<uint8_t> sampleChangeModel() {
    ChangeModelWriter w;
    w.put("orders", Bytes("k1"), Bytes("v1"));
    w.del("orders", Bytes("k2"));
    w.clear("menu");
    Bytes b = w.finishIncremental(0x1122334455667788ull, 10, 12);
    return std::vector<uint8_t>(b.data, b.data + b.size);
}

// One valid payload of each message type.
std::vector<std::vector<uint8_t>> samples() {
    return {
        buildHello(
            {POSSYNC_PROTOCOL_VERSION, "store-7", "till-2", SlaveState::RESUMING, Position(42, 99), true}),
        buildWelcome({"master-1", 42, 120, SyncMode::INCREMENTAL, 1000}),
        buildRefusal("master-1", ErrorCode::WRONG_STORE, "store id 'x' is not 'store-7'"),
        sampleChangeModel(),
        buildAck(Position(42, 100), true, 3),
        buildPing(1700000000123ull, 120),
        buildPong(1700000000123ull, 1700000000456ull, 121),
        buildError(ErrorCode::TOO_LARGE, "frame too large"),
    };
}

// Reads every field of a verified frame (what a receiver may touch), so that a mutated
// frame the verifier accepted is proven safe to read in full.
size_t touchAll(const Frame* f) {
    size_t n = 0;
    switch (f->message_type()) {
        case Message::Hello: {
            auto* m = f->message_as_Hello();
            n += m->protocol_version() + textOf(m->store_id()).size() + textOf(m->device_id()).size();
            n += positionOf(m->position()).seq() + static_cast<size_t>(m->state()) +
                 m->accept_new_generation();
            break;
        }
        case Message::Welcome: {
            auto* m = f->message_as_Welcome();
            n += textOf(m->device_id()).size() + m->generation() + m->head_seq() + m->heartbeat_ms();
            n += textOf(m->reason()).size() + static_cast<size_t>(m->code()) + m->refused();
            break;
        }
        case Message::ChangeModel: {
            auto* m = f->message_as_ChangeModel();
            n += m->generation() + m->first_seq() + m->last_seq() + m->chunk();
            if (m->changes())
                for (const Change* c : *m->changes())
                    n += tableOf(c).size() + keyOf(c).size + valueOf(c).size + static_cast<size_t>(c->op());
            if (m->tables())
                for (const auto* t : *m->tables()) n += textOf(t).size();
            break;
        }
        case Message::Ack: {
            auto* m = f->message_as_Ack();
            n += positionOf(m->position()).seq() + m->full() + m->chunk();
            break;
        }
        case Message::Ping: n += f->message_as_Ping()->time_ms(); break;
        case Message::Pong: n += f->message_as_Pong()->echo_ms(); break;
        case Message::Error: n += textOf(f->message_as_Error()->text()).size(); break;
        default: break;
    }
    return n;
}

}  // namespace

TEST_CASE("messages: Hello round trip") {
    auto p = buildHello(
        {POSSYNC_PROTOCOL_VERSION, "store-7", "till-2", SlaveState::RESUMING, Position(42, 99), true});
    const Frame* f = mustVerify(p);
    CHECK(std::string(messageTypeName(f)) == "Hello");
    auto* h = f->message_as_Hello();
    REQUIRE(h);
    CHECK(h->protocol_version() == POSSYNC_PROTOCOL_VERSION);
    CHECK(textOf(h->store_id()) == "store-7");
    CHECK(textOf(h->device_id()) == "till-2");
    CHECK(h->state() == SlaveState::RESUMING);
    CHECK(positionOf(h->position()).generation() == 42);
    CHECK(positionOf(h->position()).seq() == 99);
    CHECK(h->accept_new_generation());

    auto startingBytes = buildHello({1, "s", "d", SlaveState::STARTING, Position(0, 0), false});
    auto starting = mustVerify(startingBytes);
    CHECK(starting->message_as_Hello()->state() == SlaveState::STARTING);
    CHECK_FALSE(starting->message_as_Hello()->accept_new_generation());
}

TEST_CASE("messages: Welcome and refusal round trip") {
    // Payloads stay alive while their frames are read: the accessors point into them.
    auto wBytes = buildWelcome({"master-1", 42, 120, SyncMode::INCREMENTAL, 1000});
    auto w = mustVerify(wBytes)->message_as_Welcome();
    REQUIRE(w);
    CHECK(textOf(w->device_id()) == "master-1");
    CHECK(w->generation() == 42);
    CHECK(w->head_seq() == 120);
    CHECK(w->mode() == SyncMode::INCREMENTAL);
    CHECK(w->heartbeat_ms() == 1000);
    CHECK_FALSE(w->refused());
    CHECK(w->code() == ErrorCode::NONE);
    CHECK(w->term() == 0);
    CHECK(w->lineage() == nullptr);  // a master that never failed over sends no ancestry

    WelcomeFields promoted{"s1", 0xbb, 130, SyncMode::INCREMENTAL, 1000};
    promoted.term = 2;
    promoted.lineage = {Position(0xaa, 120), Position(0x99, 40)};
    auto pBytes = buildWelcome(promoted);
    auto p = mustVerify(pBytes)->message_as_Welcome();
    CHECK(p->term() == 2);
    REQUIRE(p->lineage());
    REQUIRE(p->lineage()->size() == 2);
    CHECK(p->lineage()->Get(0)->generation() == 0xaa);
    CHECK(p->lineage()->Get(0)->seq() == 120);
    CHECK(p->lineage()->Get(1)->generation() == 0x99);

    auto fullBytes = buildWelcome({"m", 1, 0, SyncMode::FULL, 500});
    auto full = mustVerify(fullBytes)->message_as_Welcome();
    CHECK(full->mode() == SyncMode::FULL);

    auto rBytes = buildRefusal("master-1", ErrorCode::WRONG_STORE, "wrong store");
    auto r = mustVerify(rBytes)->message_as_Welcome();
    REQUIRE(r);
    CHECK(r->refused());
    CHECK(r->code() == ErrorCode::WRONG_STORE);
    CHECK(textOf(r->reason()) == "wrong store");
    CHECK(textOf(r->device_id()) == "master-1");
    CHECK(std::string(errorCodeName(r->code())) == "WRONG_STORE");
}

TEST_CASE("messages: Ack, Ping, Pong, Error round trip; ChangeModel verifies") {
    auto aBytes = buildAck(Position(7, 8), true, 3);
    auto a = mustVerify(aBytes)->message_as_Ack();
    REQUIRE(a);
    CHECK(positionOf(a->position()).generation() == 7);
    CHECK(positionOf(a->position()).seq() == 8);
    CHECK(a->full());
    CHECK(a->chunk() == 3);
    auto incBytes = buildAck(Position(7, 9));
    auto inc = mustVerify(incBytes)->message_as_Ack();
    CHECK_FALSE(inc->full());
    CHECK(inc->chunk() == 0);

    auto pingBytes = buildPing(1700000000123ull, 55);
    auto ping = mustVerify(pingBytes)->message_as_Ping();
    REQUIRE(ping);
    CHECK(ping->time_ms() == 1700000000123ull);
    CHECK(ping->head_seq() == 55);

    auto pongBytes = buildPong(11, 22, 33);
    auto pong = mustVerify(pongBytes)->message_as_Pong();
    REQUIRE(pong);
    CHECK(pong->echo_ms() == 11);
    CHECK(pong->time_ms() == 22);
    CHECK(pong->head_seq() == 33);

    auto eBytes = buildError(ErrorCode::VERSION, "protocol 2 not supported");
    auto e = mustVerify(eBytes)->message_as_Error();
    REQUIRE(e);
    CHECK(e->code() == ErrorCode::VERSION);
    CHECK(textOf(e->text()) == "protocol 2 not supported");

    auto cmBytes = sampleChangeModel();
    const Frame* cm = mustVerify(cmBytes);
    CHECK(std::string(messageTypeName(cm)) == "ChangeModel");
    REQUIRE(asChangeModel(cm));
    CHECK(asChangeModel(cm)->changes()->size() == 3);
}

TEST_CASE("messages: names for logs") {
    CHECK(std::string(messageTypeName(Message::Pong)) == "Pong");
    CHECK(std::string(messageTypeName(static_cast<Message>(200))) == "?");
    CHECK(std::string(messageTypeName(static_cast<const Frame*>(nullptr))) == "?");
    CHECK(std::string(errorCodeName(ErrorCode::TIMEOUT)) == "TIMEOUT");
    CHECK(std::string(errorCodeName(static_cast<ErrorCode>(999))) == "?");
}

TEST_CASE("messages: every builder's payload goes through encodeFrame + FrameDecoder + verifyFrame") {
    auto all = samples();
    std::vector<uint8_t> stream;
    for (const auto& p : all) {
        auto f = encodeFrame(Bytes(p.data(), p.size()));
        stream.insert(stream.end(), f.begin(), f.end());
    }
    FrameDecoder d;
    std::vector<std::string> types;
    auto st = d.feed(Bytes(stream.data(), stream.size()), [&](Bytes payload) -> Status {
        auto r = verifyFrame(payload);
        if (!r.ok()) return r.takeError();
        types.push_back(messageTypeName(r.value()));
        return {};
    });
    REQUIRE(st.ok());
    CHECK(types == std::vector<std::string>{"Hello", "Welcome", "Welcome", "ChangeModel", "Ack", "Ping",
                                            "Pong", "Error"});
}

TEST_CASE("verifyFrame: rejects random bytes, short buffers and a wrong identifier") {
    std::mt19937 rng(77);
    for (int i = 0; i < 2000; ++i) {
        std::vector<uint8_t> junk(rng() % 256);
        for (auto& b : junk) b = static_cast<uint8_t>(rng());
        auto r = verifyFrame(Bytes(junk.data(), junk.size()));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::Corrupt);
    }
    CHECK_FALSE(verifyFrame(Bytes()).ok());
    CHECK(verifyFrame(Bytes("PSY1", 4)).error().message == "frame of 4 bytes is too short for a FlatBuffer");

    auto p = buildPing(1, 2);
    p[4] = 'X';
    p[5] = 'X';
    p[6] = 'X';
    p[7] = 'X';
    auto r = verifyFrame(Bytes(p.data(), p.size()));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Errc::Corrupt);
    CHECK(r.error().message == "wrong file identifier 'XXXX' (expected 'PSY1')");
}

TEST_CASE("verifyFrame: rejects truncated buffers") {
    for (const auto& full : samples()) {
        const Frame* whole = mustVerify(full);
        size_t expect = touchAll(whole);
        for (size_t len = 0; len < full.size(); ++len) {
            std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
            auto r = verifyFrame(Bytes(cut.data(), cut.size()));
            if (len + 8 <= full.size()) {
                CHECK_MESSAGE(!r.ok(), "truncated to " << len << " of " << full.size());
            } else if (r.ok()) {
                // Only trailing alignment padding was cut: the content is all still there.
                CHECK(touchAll(r.value()) == expect);
            }
        }
    }
}

TEST_CASE("verifyFrame: rejects valid FlatBuffers of other shapes") {
    // A table of another schema with another identifier.
    {
        flatbuffers::FlatBufferBuilder fbb;
        auto s = fbb.CreateString("not a frame");
        auto start = fbb.StartTable();
        fbb.AddOffset(4, s);
        fbb.AddElement<uint64_t>(6, 0x0102030405060708ull, 0);
        fbb.Finish(flatbuffers::Offset<void>(fbb.EndTable(start)), "OTHR");
        auto r = verifyFrame(Bytes(fbb.GetBufferPointer(), fbb.GetSize()));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message.find("wrong file identifier 'OTHR'") == 0);
    }
    // The same shape claiming our identifier: field 0 is read as the message type and
    // field 1 (a 64-bit scalar) as the message offset.
    {
        flatbuffers::FlatBufferBuilder fbb;
        auto s = fbb.CreateString("not a frame");
        auto start = fbb.StartTable();
        fbb.AddOffset(4, s);
        fbb.AddElement<uint64_t>(6, 0x0102030405060708ull, 0);
        fbb.Finish(flatbuffers::Offset<void>(fbb.EndTable(start)), FrameIdentifier());
        auto r = verifyFrame(Bytes(fbb.GetBufferPointer(), fbb.GetSize()));
        CHECK_FALSE(r.ok());
    }
    // A Hello as the root table instead of a Frame.
    {
        flatbuffers::FlatBufferBuilder fbb;
        auto store = fbb.CreateString("store");
        auto hello = CreateHello(fbb, 1, store);
        fbb.Finish(hello, FrameIdentifier());
        auto r = verifyFrame(Bytes(fbb.GetBufferPointer(), fbb.GetSize()));
        CHECK_FALSE(r.ok());
    }
    // A Frame without a message, and one with an unknown message type.
    {
        flatbuffers::FlatBufferBuilder fbb;
        fbb.Finish(CreateFrame(fbb), FrameIdentifier());
        auto r = verifyFrame(Bytes(fbb.GetBufferPointer(), fbb.GetSize()));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message == "frame holds no message");
    }
    {
        flatbuffers::FlatBufferBuilder fbb;
        auto ping = CreatePing(fbb, 1, 2);
        fbb.Finish(CreateFrame(fbb, static_cast<Message>(12), ping.Union()), FrameIdentifier());
        auto r = verifyFrame(Bytes(fbb.GetBufferPointer(), fbb.GetSize()));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message == "unknown message type 12");
    }
    // A frame built without any file identifier.
    {
        flatbuffers::FlatBufferBuilder fbb;
        auto ping = CreatePing(fbb, 1, 2);
        fbb.Finish(CreateFrame(fbb, Message::Ping, ping.Union()));
        CHECK_FALSE(verifyFrame(Bytes(fbb.GetBufferPointer(), fbb.GetSize())).ok());
    }
}

TEST_CASE("fuzz: 10,000 random mutations of valid frames never crash") {
    std::mt19937 rng(20240601);
    auto all = samples();
    int accepted = 0, rejected = 0;
    size_t sink = 0;
    for (int i = 0; i < 10000; ++i) {
        std::vector<uint8_t> m = all[static_cast<size_t>(i) % all.size()];
        int kind = static_cast<int>(rng() % 4);
        int edits = 1 + static_cast<int>(rng() % 8);
        for (int e = 0; e < edits && !m.empty(); ++e) {
            size_t at = rng() % m.size();
            switch (kind) {
                case 0: m[at] = static_cast<uint8_t>(rng()); break;               // random byte
                case 1: m[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;  // bit flip
                case 2: m[at] = e % 2 ? 0xff : 0x00; break;                       // extremes
                default: m.resize(at); break;                                     // truncation
            }
        }
        auto r = verifyFrame(Bytes(m.data(), m.size()));
        if (r.ok()) {
            ++accepted;
            sink += touchAll(r.value());
        } else {
            ++rejected;
            CHECK(r.error().code == Errc::Corrupt);
        }
        // The same bytes through the decoder, in two pieces.
        auto framed = encodeFrame(Bytes(m.data(), m.size()));
        FrameDecoder d(1024);
        size_t cut = rng() % (framed.size() + 1);
        auto cb = [&](Bytes p) -> Status {
            auto v = verifyFrame(p);
            if (v.ok()) sink += touchAll(v.value());
            return {};
        };
        auto s1 = d.feed(Bytes(framed.data(), cut), cb);
        if (s1.ok()) (void)d.feed(Bytes(framed.data() + cut, framed.size() - cut), cb);
    }
    MESSAGE("mutations accepted " << accepted << ", rejected " << rejected << " (sink " << sink << ")");
    CHECK(accepted + rejected == 10000);
    CHECK(rejected > 1000);
}

TEST_CASE("verification work is bounded by what the sender may send (issue 10, CPU)") {
    // A ChangeModel whose changes vector points 100,000 times at one Change table: 400 KB of
    // offsets, each a table for the verifier to check.
    flatbuffers::FlatBufferBuilder fbb;
    auto table = fbb.CreateString("menu");
    std::vector<uint8_t> k{1};
    auto key = fbb.CreateVector(k);
    ChangeBuilder cb(fbb);
    cb.add_table(table);
    cb.add_key(key);
    auto one = cb.Finish();
    std::vector<flatbuffers::Offset<Change>> refs(100000, one);
    auto changes = fbb.CreateVector(refs);
    ChangeModelBuilder mb(fbb);
    mb.add_generation(1);
    mb.add_first_seq(1);
    mb.add_last_seq(1);
    mb.add_changes(changes);
    fbb.Finish(CreateFrame(fbb, Message::ChangeModel, mb.Finish().Union()), FrameIdentifier());
    Bytes payload(fbb.GetBufferPointer(), fbb.GetSize());
    // Sized from the payload: at most one table per 16 bytes (here ~25,000 of the 100,000).
    CHECK(verifyFrame(payload).error().code == Errc::Corrupt);
    // What a slave may send holds a few tables: refused at the 17th.
    CHECK(verifyFrame(payload, kFromSlaveMaxTables).error().code == Errc::Corrupt);
    // Everything a slave really sends passes the slave bound.
    HelloFields h;
    h.protocolVersion = 2;
    h.storeId = "s";
    h.deviceId = "d";
    for (const auto& p : {buildHello(h), buildAck(Position(1, 2), true, 3), buildPing(1, 2),
                          buildPong(1, 2, 3), buildError(ErrorCode::PROTOCOL, "x")})
        CHECK(verifyFrame(Bytes(p.data(), p.size()), kFromSlaveMaxTables).ok());
}
