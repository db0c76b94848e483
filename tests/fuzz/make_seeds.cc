// Writes the seed corpora of the fuzz targets: tests/fuzz/<target>/corpus/.
//
//   fuzz_make_seeds DIR     DIR is tests/fuzz (tools/fuzz --seeds runs it)
//
// Frame seeds are built with the wire builders and wire::encodeFrame, never by hand, so they
// follow the frame header when it changes (rerun this and commit the new corpus). Each seed
// starts with the fuzz target's control byte (see fuzz_frame.cc / fuzz_console.cc).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/options.h"
#include "possync_config.h"
#include "wire/change_model.h"
#include "wire/fragment.h"
#include "wire/frame.h"
#include "wire/messages.h"

using namespace possync;

namespace {

std::filesystem::path gRoot;
int gFailures = 0;

void writeSeed(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
    auto dir = gRoot / target / "corpus";
    std::filesystem::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!out) ++gFailures;
}

void writeText(const std::string& target, const std::string& name, uint8_t control, const std::string& text) {
    std::vector<uint8_t> bytes;
    bytes.push_back(control);
    bytes.insert(bytes.end(), text.begin(), text.end());
    writeSeed(target, name, bytes);
}

void writeConfig(const std::string& name, const std::string& text) {
    writeSeed("config", name, std::vector<uint8_t>(text.begin(), text.end()));
}

// A stream of frames behind a control byte.
class Stream {
public:
    explicit Stream(uint8_t control) { bytes_.push_back(control); }
    Stream& frame(Bytes payload) {
        auto f = wire::encodeFrame(payload);
        bytes_.insert(bytes_.end(), f.begin(), f.end());
        return *this;
    }
    Stream& frame(const std::vector<uint8_t>& payload) {
        return frame(Bytes(payload.data(), payload.size()));
    }
    Stream& raw(const std::vector<uint8_t>& b) {
        bytes_.insert(bytes_.end(), b.begin(), b.end());
        return *this;
    }
    const std::vector<uint8_t>& bytes() const { return bytes_; }

private:
    std::vector<uint8_t> bytes_;
};

constexpr uint64_t kGen = 0x1122334455667788ULL;

// Control bytes (fuzz_frame.cc): bits 0-2 read size index, bits 3-5 zero = commit.
constexpr uint8_t kCommitWhole = 0x07;  // one read, commit
constexpr uint8_t kCommitBytes = 0x00;  // 1-byte reads, commit
constexpr uint8_t kAbortSplit = 0x0b;   // 7-byte reads, abort
constexpr uint8_t kAbortWhole = 0x0f;   // one read, abort

std::vector<uint8_t> welcome(wire::SyncMode mode) {
    wire::WelcomeFields w;
    w.deviceId = "master-1";
    w.generation = kGen;
    w.headSeq = 10;
    w.mode = mode;
    w.heartbeatMs = 1000;
    return wire::buildWelcome(w);
}

void frameSeeds() {
    wire::ChangeModelWriter w;
    auto incremental = [&](uint64_t first, uint64_t last) {
        Bytes b = w.finishIncremental(kGen, first, last);
        return std::vector<uint8_t>(b.data, b.data + b.size);
    };

    w.put("orders", Bytes("a1"), Bytes("one"));
    w.put("orders", Bytes("a2"), Bytes("two"));
    w.del("orders", Bytes("a1"));
    w.put("menu", Bytes("\x00\xff", 2), Bytes("\x01\x02", 2));
    auto inc1 = incremental(1, 1);
    w.reset();
    w.clear("orders");
    w.put("orders", Bytes("b1"), Bytes(std::string(300, 'v')));
    w.del("menu", Bytes("absent"));
    auto inc2 = incremental(2, 3);
    w.reset();

    writeSeed(
        "frame", "incremental-commit",
        Stream(kCommitWhole).frame(welcome(wire::SyncMode::INCREMENTAL)).frame(inc1).frame(inc2).bytes());
    writeSeed("frame", "incremental-bytewise", Stream(kCommitBytes).frame(inc1).frame(inc2).bytes());
    writeSeed("frame", "incremental-abort", Stream(kAbortSplit).frame(inc1).frame(inc2).bytes());

    // FULL: chunk 0 (with the watched tables), chunk 1 (last), then the replay.
    w.put("menu", Bytes("m1"), Bytes("burger"));
    w.put("orders", Bytes("a1"), Bytes("one"));
    Bytes c0 = w.finishFull(kGen, 5, 0, false, {"menu", "orders"});
    std::vector<uint8_t> chunk0(c0.data, c0.data + c0.size);
    w.reset();
    w.put("orders", Bytes("a2"), Bytes("two"));
    w.put("orders", Bytes("a0"), Bytes("out of order"));
    Bytes c1 = w.finishFull(kGen, 6, 1, true, {});
    std::vector<uint8_t> chunk1(c1.data, c1.data + c1.size);
    w.reset();
    w.put("orders", Bytes("a3"), Bytes("three"));
    auto replay = incremental(6, 6);
    w.reset();
    writeSeed("frame", "full-commit",
              Stream(kCommitWhole)
                  .frame(welcome(wire::SyncMode::FULL))
                  .frame(chunk0)
                  .frame(chunk1)
                  .frame(replay)
                  .bytes());
    writeSeed("frame", "full-abort", Stream(kAbortWhole).frame(chunk0).frame(chunk1).bytes());
    writeSeed("frame", "full-chunk-order", Stream(kCommitWhole).frame(chunk1).frame(chunk0).bytes());

    // A FULL chunk 0 whose table list holds a reserved name and a name with a comma.
    Bytes c2 = w.finishFull(kGen, 5, 0, true, {"possync.meta", "a,b"});
    writeSeed("frame", "full-bad-tables", Stream(kCommitWhole).frame(Bytes(c2.data, c2.size)).bytes());
    w.reset();

    // Changes the slave must refuse: a reserved table, an empty table, a key over LMDB's limit.
    w.put("possync.meta", Bytes("seq"), Bytes("x"));
    writeSeed("frame", "reserved-table", Stream(kCommitWhole).frame(incremental(1, 1)).bytes());
    w.reset();
    w.put("", Bytes("k"), Bytes("v"));
    writeSeed("frame", "empty-table", Stream(kCommitWhole).frame(incremental(1, 1)).bytes());
    w.reset();
    w.put("orders", Bytes(std::string(600, 'k')), Bytes("v"));
    writeSeed("frame", "long-key", Stream(kCommitWhole).frame(incremental(1, 1)).bytes());
    w.reset();
    w.put("orders", Bytes(""), Bytes("empty key"));
    writeSeed("frame", "empty-key", Stream(kCommitWhole).frame(incremental(1, 1)).bytes());
    w.reset();

    // A model of another generation, and a backwards seq range.
    {
        wire::ChangeModelWriter o;
        o.put("orders", Bytes("x"), Bytes("y"));
        Bytes other = o.finishIncremental(kGen + 1, 2, 2);
        writeSeed("frame", "other-generation", Stream(kCommitWhole).frame(inc1).frame(other).bytes());
        o.reset();
        o.put("orders", Bytes("x"), Bytes("y"));
        Bytes backwards = o.finishIncremental(kGen, 9, 3);
        writeSeed("frame", "seq-backwards", Stream(kCommitWhole).frame(backwards).bytes());
    }

    // One model in three Fragments.
    {
        for (int i = 0; i < 40; ++i)
            w.put("orders", Bytes("k" + std::to_string(i)), Bytes(std::string(20, 'a' + i % 26)));
        auto whole = incremental(1, 1);
        w.reset();
        Stream s(kCommitWhole);
        size_t piece = whole.size() / 3 + 1;
        for (size_t off = 0; off < whole.size(); off += piece) {
            size_t n = std::min(piece, whole.size() - off);
            s.frame(wire::buildFragment(whole.size(), off, Bytes(whole.data() + off, n)));
        }
        writeSeed("frame", "fragments", s.bytes());
        // A fragment that claims a message over the reassembler's limit, one that overruns.
        writeSeed(
            "frame", "fragment-too-large",
            Stream(kCommitWhole).frame(wire::buildFragment(uint64_t(1) << 40, 0, Bytes("abc"))).bytes());
        writeSeed("frame", "fragment-overrun",
                  Stream(kCommitWhole).frame(wire::buildFragment(4, 2, Bytes("abcdef"))).bytes());
        // A Fragment holding a Fragment.
        auto inner = wire::buildFragment(3, 0, Bytes("abc"));
        writeSeed("frame", "fragment-nested",
                  Stream(kCommitWhole)
                      .frame(wire::buildFragment(inner.size(), 0, Bytes(inner.data(), inner.size())))
                      .bytes());
    }

    // Other messages, some unexpected from a master.
    wire::HelloFields h;
    h.protocolVersion = 1;
    h.storeId = "shop1";
    h.deviceId = "till-2";
    writeSeed("frame", "other-messages",
              Stream(kAbortSplit)
                  .frame(wire::buildPing(1000, 5))
                  .frame(wire::buildPong(1000, 1001, 5))
                  .frame(wire::buildAck(wire::Position(kGen, 3)))
                  .frame(wire::buildHello(h))
                  .frame(wire::buildError(wire::ErrorCode::PROTOCOL, "bye"))
                  .bytes());
    writeSeed("frame", "refusal",
              Stream(kCommitWhole)
                  .frame(wire::buildRefusal("master-1", wire::ErrorCode::WRONG_STORE, "not yours"))
                  .bytes());

    // Framing errors: a zero length, a length over the limit, a payload that is not a Frame.
    std::vector<uint8_t> zero(wire::kFrameHeaderBytes), huge(wire::kFrameHeaderBytes);
    wire::writeFrameHeader(zero.data(), 0, 0);
    wire::writeFrameHeader(huge.data(), 0xfffffff0u, 0);
    writeSeed("frame", "zero-length", Stream(kCommitWhole).raw(zero).bytes());
    writeSeed("frame", "too-large", Stream(kCommitWhole).raw(huge).bytes());
    writeSeed("frame", "not-flatbuffers",
              Stream(kCommitWhole).frame(Bytes("PSY1 but not a flatbuffer at all")).bytes());
    auto truncated = wire::encodeFrame(Bytes(inc1.data(), inc1.size()));
    truncated.resize(truncated.size() - 5);
    writeSeed("frame", "truncated", Stream(kCommitWhole).raw(truncated).bytes());
}

// The master target's records (fuzz_master.cc): [tag][len lo][len hi][bytes].
class Records {
public:
    // A payload the target frames (after putting the store's generation for kMasterGen).
    Records& payload(const std::vector<uint8_t>& p, uint8_t readSize = 0) {
        return put(uint8_t(readSize << 4), p);
    }
    Records& raw(const std::vector<uint8_t>& b, uint8_t readSize = 0) {
        return put(uint8_t(1 | readSize << 4), b);
    }
    Records& wait(uint16_t tensOfMs) {
        bytes_.insert(bytes_.end(), {2, uint8_t(tensOfMs), uint8_t(tensOfMs >> 8)});
        return *this;
    }
    Records& event(uint8_t bits) {
        bytes_.insert(bytes_.end(), {uint8_t(3 | bits), 0, 0});
        return *this;
    }
    const std::vector<uint8_t>& bytes() const { return bytes_; }

private:
    Records& put(uint8_t tag, const std::vector<uint8_t>& b) {
        bytes_.insert(bytes_.end(), {tag, uint8_t(b.size()), uint8_t(b.size() >> 8)});
        bytes_.insert(bytes_.end(), b.begin(), b.end());
        return *this;
    }
    std::vector<uint8_t> bytes_;
};

// fuzz_master.cc's stand-in for its store's generation, and that store's head (40 commits
// after the watched-set entry) and oldest log entry (30 kept).
constexpr uint64_t kMasterGen = 0x47454e4d41474943ULL;
constexpr uint64_t kMasterHead = 41;

std::vector<uint8_t> masterHello(bool resuming, uint64_t seq, uint64_t gen = kMasterGen,
                                 uint32_t maxFrame = 0, std::string_view store = "store1",
                                 uint32_t version = 0) {
    wire::HelloFields h;
    h.protocolVersion = version ? version : POSSYNC_PROTOCOL_VERSION;
    h.storeId = store;
    h.deviceId = "slave-dev";
    h.state = resuming ? wire::SlaveState::RESUMING : wire::SlaveState::STARTING;
    h.position = wire::Position(gen, seq);
    h.maxFrame = maxFrame;
    h.maxMessage = maxFrame ? 1u << 20 : 0;
    return wire::buildHello(h);
}

void masterSeeds() {
    auto ack = [](uint64_t seq) { return wire::buildAck(wire::Position(kMasterGen, seq)); };
    auto fullAck = [](uint32_t chunk) {
        return wire::buildAck(wire::Position(kMasterGen, kMasterHead), true, chunk);
    };
    // FULL: Hello STARTING, the chunks acknowledged, then heartbeats.
    Records full;
    full.payload(masterHello(false, 0));
    for (uint32_t c = 0; c < 3; ++c) full.payload(fullAck(c), uint8_t(c % 3));
    full.wait(150)
        .payload(wire::buildPing(1000, kMasterHead))
        .payload(wire::buildPong(1000, 1001, kMasterHead));
    full.payload(ack(kMasterHead)).wait(300);
    writeSeed("master", "full", full.bytes());
    // INCREMENTAL from seq 30: the log streamed in windows of 4, acknowledged.
    Records inc;
    inc.payload(masterHello(true, 30), 1);
    for (uint64_t s = 34; s <= kMasterHead; s += 4) inc.payload(ack(std::min(s, kMasterHead))).wait(20);
    inc.payload(wire::buildPing(5, 41)).wait(300).event(0x10);
    writeSeed("master", "incremental", inc.bytes());
    // A position older than the log (FULL), one ahead of the head, another generation with and
    // without accept, another store, another protocol version.
    writeSeed("master", "trimmed", Records().payload(masterHello(true, 2)).payload(fullAck(0)).bytes());
    writeSeed("master", "ahead", Records().payload(masterHello(true, 99)).bytes());
    writeSeed("master", "other-generation", Records().payload(masterHello(true, 20, 77)).bytes());
    {
        wire::HelloFields h;
        h.protocolVersion = POSSYNC_PROTOCOL_VERSION;
        h.storeId = "store1";
        h.deviceId = "slave-dev";
        h.state = wire::SlaveState::RESUMING;
        h.position = wire::Position(77, 20);
        h.acceptNewGeneration = true;
        writeSeed("master", "accept-generation",
                  Records().payload(wire::buildHello(h)).payload(fullAck(0)).bytes());
    }
    {
        // Slave writes (issue 12): two requests after an INCREMENTAL Hello.
        wire::RequestWriter rw;
        uint8_t delta[8] = {0, 0, 0, 0, 0, 0, 0, 1};
        rw.change("t", wire::Op::PUT, Bytes("k1"), Bytes("v1"));
        rw.change("t", wire::Op::ADD, Bytes("n"), Bytes(delta, 8));
        rw.condition("u", Bytes("k2"), wire::Require::ABSENT, 0);
        Bytes one = rw.finish("slave-dev", 1, kMasterGen, 1'700'000'000'000);
        std::vector<uint8_t> first(one.data, one.data + one.size);
        rw.reset();
        rw.change("u", wire::Op::DEL, Bytes("k3"), {});
        Bytes two = rw.finish("slave-dev", 2, kMasterGen, 1'700'000'000'001);
        writeSeed("master", "write-requests",
                  Records()
                      .payload(masterHello(true, 30), 1)
                      .payload(first)
                      .payload(std::vector<uint8_t>(two.data, two.data + two.size))
                      .bytes());
    }
    writeSeed("master", "wrong-store",
              Records().payload(masterHello(false, 0, kMasterGen, 0, "other")).bytes());
    writeSeed("master", "wrong-version",
              Records().payload(masterHello(false, 0, kMasterGen, 0, "store1", 99)).bytes());
    // A small max_frame: chunks and big log entries go as Fragments while the queue drains.
    Records frag;
    frag.payload(masterHello(false, 0, kMasterGen, 600)).event(0x04).event(0x08 | 0x10).event(0x10);
    for (uint32_t c = 0; c < 4; ++c) frag.payload(fullAck(c)).event(0x10);
    writeSeed("master", "fragments", frag.bytes());
    // Acks that were never sent, before the Hello, a second Hello, an Ack inside a Fragment.
    writeSeed("master", "ack-before-hello", Records().payload(ack(3)).bytes());
    writeSeed("master", "bad-acks",
              Records().payload(masterHello(true, 35)).payload(ack(40)).payload(fullAck(5)).bytes());
    writeSeed("master", "second-hello",
              Records().payload(masterHello(true, 41)).payload(masterHello(true, 41)).bytes());
    {
        auto a = ack(36);
        auto inner = wire::encodeFrame(Bytes(a.data(), a.size()));
        writeSeed("master", "fragmented-ack",
                  Records()
                      .payload(masterHello(true, 35))
                      .payload(wire::buildFragment(a.size(), 0, Bytes(a.data(), 8)))
                      .payload(wire::buildFragment(a.size(), 8, Bytes(a.data() + 8, a.size() - 8)))
                      .raw(inner, 2)
                      .bytes());
    }
    // Frames a slave never sends, an Error, raw garbage, a silent peer (timeout), a peer that
    // stops reading, a failing link, a reset.
    writeSeed("master", "unexpected",
              Records()
                  .payload(masterHello(true, 41))
                  .payload(welcome(wire::SyncMode::FULL))
                  .payload(wire::buildRefusal("x", wire::ErrorCode::BUSY, "no"))
                  .bytes());
    writeSeed("master", "slave-error",
              Records()
                  .payload(masterHello(true, 41))
                  .payload(wire::buildError(wire::ErrorCode::CONTINUITY, "gap"))
                  .bytes());
    std::vector<uint8_t> huge(wire::kFrameHeaderBytes);
    wire::writeFrameHeader(huge.data(), 0xfffffff0u, 0);
    writeSeed("master", "garbage",
              Records().raw({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}).bytes());
    writeSeed("master", "too-large", Records().raw(huge).bytes());
    writeSeed(
        "master", "pings-only",
        Records().payload(wire::buildPing(1, 0)).wait(300).payload(wire::buildPing(2, 0)).wait(700).bytes());
    writeSeed("master", "silent", Records().payload(masterHello(true, 30)).wait(700).bytes());
    writeSeed("master", "stops-reading",
              Records()
                  .payload(masterHello(false, 0))
                  .event(0x04)
                  .wait(100)
                  .payload(fullAck(0))
                  .event(0x08 | 0x10)
                  .bytes());
    writeSeed("master", "send-fails", Records().payload(masterHello(true, 30)).event(0x20).wait(100).bytes());
    writeSeed("master", "reset", Records().payload(masterHello(true, 30)).event(0x80).bytes());
}

void consoleSeeds() {
    // Control byte (fuzz_console.cc): bit 0 Script mode, bits 1-3 read size, bit 4 hang up.
    constexpr uint8_t kTerminal = 0x00, kScript = 0x01 | (7 << 1), kScriptBytes = 0x01;
    writeText("console", "commands-script", kScript,
              "help\nversion\nstatus\npeers\ntables\nstats\ndiscovery\nlog 5\nloglevel\n"
              "get orders a1\nget orders 0x00ff\nscan orders a 2\nscan orders\nresync\naccept-generation\n");
    writeText("console", "commands-terminal", kTerminal,
              "help get\r\nget orders \"a1\"\r\nscan 'orders' \"\" 1000\r\nnope\r\n\r\n");
    writeText("console", "editing", kTerminal, "ve\x7fr\x08rsion\r\x1b[A\x1bOP\x1b[1;5Cstatus\x03tables\r\n");
    writeText("console", "bad-bytes", kScriptBytes, std::string("get\x00orders\xff a1\n", 16) + "\x04");
    writeText("console", "long-line", kScript, std::string(200, 'x') + "\nstatus\n");
    writeText("console", "quotes", kScript,
              "get \"unterminated\nget \"a\\\"b\" 'c d'\nget a\\\nscan orders \"\\\\\"\n");
    writeText("console", "limits", kScript,
              "scan orders a 1001\nlog 1001\nlog 0\nscan orders a -1\nlog 99999999999999999999\n");
    writeText("console", "hangup", 0x10 | kScript, "stat\x04us\nversion\n");
    writeText("console", "loglevel", kScript,
              "loglevel sync debug\nloglevel all warning\nloglevel nope x\nlog 3\n");
}

void configSeeds() {
    writeConfig("default.toml", daemon::defaultConfigText());
    writeConfig("master.toml",
                "role = \"master\"\ndata = \"/var/lib/possync\"\nstore = \"shop1\"\nlisten = \"[::]:7700\"\n"
                "tables = [\"menu\", \"orders\"]\nheartbeat_ms = 500\ntimeout_ms = 2000\n");
    writeConfig("slave.toml",
                "role = \"slave\"\ndata = \"/d\"\nstore = \"shop1\"\nmaster = \"10.0.0.1:7700\"\n"
                "discovery = \"static\"\nsync = false\nnew_generation = \"accept\"\n");
    writeConfig("bad-types.toml", "role = 1\nmap_size = -5\ntables = [1, 2]\nlisten = { a = 1 }\n");
    writeConfig("bad-syntax.toml", "role = \"master\ndata = [\n[section\nkey = 0x\n");
    writeConfig("unknown.toml", "no_such_option = true\n[table]\nx = 1\n");
    writeConfig("numbers.toml",
                "window = 99999999999999999999\nbaud = 0\nchunk_bytes = 1e9\ntimeout_ms = 1979-05-27\n");
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: fuzz_make_seeds TESTS_FUZZ_DIR\n");
        return 2;
    }
    gRoot = argv[1];
    frameSeeds();
    masterSeeds();
    consoleSeeds();
    configSeeds();
    if (gFailures) std::fprintf(stderr, "fuzz_make_seeds: %d files could not be written\n", gFailures);
    return gFailures ? 1 : 0;
}
