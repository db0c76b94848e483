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
#include <vector>

#include "daemon/options.h"
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
    consoleSeeds();
    configSeeds();
    if (gFailures) std::fprintf(stderr, "fuzz_make_seeds: %d files could not be written\n", gFailures);
    return gFailures ? 1 : 0;
}
