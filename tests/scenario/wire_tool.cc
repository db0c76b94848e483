// wire_tool: crafts and reads wire frames for the scenario tests' bad peers and fake master
// (tests/scenario/test_bad_peers.py), so Python needs no FlatBuffers library.
//
// Every builder prints ONE line: the hex of a complete frame (16-byte header with length and
// checksums, wire/frame.h, + payload), built with the firmware's own builders
// (wire/messages.h, wire/change_model.h).
//   wire_tool hello --store S [--device D] [--resuming GEN:SEQ] [--version N]   GEN: hex digits;
//                                          N: this build's protocol version unless given
//                   [--term T]            the highest failover term the slave has seen
//                   [--store-bytes N]     a hostile peer's store id: S repeated to N bytes
//   wire_tool welcome --generation GEN --head H --mode full|incremental [--device D]
//   wire_tool change --generation GEN --first F --last L --table T --key K --value V
//                                          an INCREMENTAL ChangeModel with one PUT
//   wire_tool chunk --generation GEN --seq S --number N --last 0|1 --table T --key K --value V
//                   [--puts M] [--records R]
//                                          a FULL chunk read at seq S with one PUT (chunk 0
//                                          names table T as the snapshot's only table)
//   wire_tool unverifiable                 a Hello frame (right length, identifier PSY1) whose
//                                          root offset points outside the buffer
//   wire_tool decode HEX                   one payload (without the frame header): prints its
//                                          type and fields (Hello, Welcome, Error, Ack), e.g.
//                                          "Hello store=s1 ... state=RESUMING position=GEN:SEQ";
//                                          exit 1 when it fails verification
//   wire_tool rogue-slave --port P --store S [--device D] [--resuming GEN:SEQ] [--version N]
//                   [--max-frame B] [--timeout-ms T] [--no-wait 1] [--term T]
//                                          a slave on 127.0.0.1:P: sends a Hello, prints the
//                                          Welcome ("Welcome ..." as decode prints it), then one
//                                          hand-built WriteRequest per stdin line, each answered
//                                          before the next, printing
//                                          "WriteResult id=N status=S seq=Q reason=R".
//                                          A line: ID [gen=HEX|gen=other] then items
//                                            put:T:K:V  del:T:K  clear:T  add:T:K:DELTA
//                                            add4:T:K (a 4-byte delta)  big:T:K:NBYTES (a value)
//                                            bigkey:T:NBYTES  absent:T:K  present:T:K
//                                          (gen: the Welcome's unless given; other: another one).
//                                          A request over --max-frame goes as Fragments. An Error
//                                          or a close prints "Error code=C text=X" / "closed".
//                                          --no-wait 1: sends every request at once, ends
//                                          its side of the link and reads until the master
//                                          closed it (so the master saw the close): "sent N".
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/bytes.h"

#include "possync_config.h"
#include "wire/change_model.h"
#include "wire/fragment.h"
#include "wire/frame.h"
#include "wire/messages.h"

namespace possync::scenario {
namespace {

int fail(const std::string& what) {
    fprintf(stderr, "wire_tool: %s\n", what.c_str());
    return 1;
}

int usage() {
    fprintf(
        stderr,
        "usage: wire_tool hello --store S [--device D] [--resuming GEN:SEQ] [--version N]\n"
        "                       [--store-bytes N] [--term T]\n"
        "       wire_tool welcome --generation GEN --head H --mode full|incremental [--device D]\n"
        "       wire_tool change --generation GEN --first F --last L --table T --key K --value V\n"
        "       wire_tool chunk --generation GEN --seq S --number N --last 0|1 --table T --key K --value V\n"
        "       wire_tool unverifiable\n"
        "       wire_tool refs --count N\n"
        "       wire_tool ping\n"
        "       wire_tool decode HEX\n"
        "       wire_tool rogue-slave --port P --store S [--device D] [--resuming GEN:SEQ] [--version N]\n"
        "                             [--max-frame B] [--timeout-ms T] [--no-wait 1] [--term T]   (requests "
        "on stdin)\n");
    return 2;
}

int printFrame(Bytes payload) {
    std::vector<uint8_t> frame = wire::encodeFrame(payload);
    printf("%s\n", toHex(Bytes(frame.data(), frame.size())).c_str());
    return 0;
}

using Options = std::map<std::string, std::string>;

std::optional<Options> parseOptions(int argc, char** argv) {
    Options o;
    for (int i = 2; i < argc; i += 2) {
        if (std::strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) return std::nullopt;
        o[argv[i] + 2] = argv[i + 1];
    }
    return o;
}

std::string option(const Options& o, const std::string& name, const std::string& fallback = "") {
    auto it = o.find(name);
    return it == o.end() ? fallback : it->second;
}

int runHello(const Options& o) {
    std::string store = option(o, "store"), device = option(o, "device", "wire-tool");
    if (store.empty()) return fail("hello needs --store");
    if (std::string bytes = option(o, "store-bytes"); !bytes.empty()) {
        auto n = parseU64(bytes);
        if (!n || *n > (64u << 20)) return fail("--store-bytes takes a number up to 64 MiB");
        std::string seed = store;
        store.clear();
        while (store.size() < *n) store += seed;
        store.resize(*n);
    }
    auto version = parseU64(option(o, "version", std::to_string(POSSYNC_PROTOCOL_VERSION)));
    if (!version || *version > UINT32_MAX) return fail("--version takes a number");
    wire::HelloFields h;
    h.protocolVersion = static_cast<uint32_t>(*version);
    h.storeId = store;
    h.deviceId = device;
    auto term = parseU64(option(o, "term", "0"));
    if (!term) return fail("--term takes a number");
    h.term = *term;
    std::string resuming = option(o, "resuming");
    if (!resuming.empty()) {
        auto colon = resuming.find(':');
        auto gen = parseHex64(resuming.substr(0, colon));
        auto seq = colon == std::string::npos ? std::nullopt : parseU64(resuming.substr(colon + 1));
        if (!gen || !seq) return fail("--resuming takes GEN:SEQ (hex:decimal), not '" + resuming + "'");
        h.state = wire::SlaveState::RESUMING;
        h.position = wire::Position(*gen, *seq);
    }
    auto payload = wire::buildHello(h);
    return printFrame(Bytes(payload.data(), payload.size()));
}

int runWelcome(const Options& o) {
    auto gen = parseHex64(option(o, "generation"));
    auto head = parseU64(option(o, "head"));
    std::string mode = option(o, "mode"), device = option(o, "device", "fake-master");
    if (!gen || !head || (mode != "full" && mode != "incremental"))
        return fail("welcome needs --generation GEN --head H --mode full|incremental");
    wire::WelcomeFields w;
    w.deviceId = device;
    w.generation = *gen;
    w.headSeq = *head;
    w.mode = mode == "full" ? wire::SyncMode::FULL : wire::SyncMode::INCREMENTAL;
    w.heartbeatMs = 1000;
    auto payload = wire::buildWelcome(w);
    return printFrame(Bytes(payload.data(), payload.size()));
}

int runChange(const Options& o) {
    auto gen = parseHex64(option(o, "generation"));
    auto first = parseU64(option(o, "first"));
    auto last = parseU64(option(o, "last"));
    std::string table = option(o, "table"), key = option(o, "key"), value = option(o, "value");
    if (!gen || !first || !last || table.empty() || key.empty())
        return fail("change needs --generation GEN --first F --last L --table T --key K --value V");
    wire::ChangeModelWriter writer;
    writer.put(table, Bytes(key), Bytes(value));
    return printFrame(writer.finishIncremental(*gen, *first, *last));
}

int runChunk(const Options& o) {
    auto gen = parseHex64(option(o, "generation"));
    auto seq = parseU64(option(o, "seq"));
    auto number = parseU64(option(o, "number"));
    std::string last = option(o, "last"), table = option(o, "table"), key = option(o, "key"),
                value = option(o, "value");
    if (!gen || !seq || !number || *number > UINT32_MAX || (last != "0" && last != "1") || table.empty() ||
        key.empty())
        return fail("chunk needs --generation GEN --seq S --number N --last 0|1 --table T --key K --value V");
    // --puts M: M PUTs (keys K0..K{M-1}) instead of one; --records R: chunk 0 announces R records.
    auto puts = parseU64(option(o, "puts", "1"));
    std::string announce = option(o, "records");
    auto records = announce.empty() ? std::optional<uint64_t>() : parseU64(announce);
    if (!puts || *puts == 0 || *puts > 1000000 || (!announce.empty() && !records))
        return fail("chunk: --puts must be 1..1000000 and --records a number");
    wire::ChangeModelWriter writer;
    if (*puts == 1) {
        writer.put(table, Bytes(key), Bytes(value));
    } else {
        for (uint64_t i = 0; i < *puts; ++i) {
            std::string k = key + std::to_string(i);
            writer.put(table, Bytes(k), Bytes(value));
        }
    }
    std::vector<std::string> tables;
    if (*number == 0) tables.push_back(table);
    std::optional<uint64_t> snapshotRecords;
    if (*number == 0 && records) snapshotRecords = *records;
    return printFrame(
        writer.finishFull(*gen, *seq, static_cast<uint32_t>(*number), last == "1", tables, snapshotRecords));
}

// A ChangeModel whose changes vector points `count` times at one Change table: cheap to send,
// one table check per reference for a verifier that is not bounded.
int runRefs(const Options& o) {
    auto count = parseU64(option(o, "count"));
    if (!count || *count == 0 || *count > 4000000) return fail("refs needs --count N (1..4000000)");
    flatbuffers::FlatBufferBuilder fbb(*count * 4 + 1024);
    auto table = fbb.CreateString("menu");
    uint8_t k = 1;
    auto key = fbb.CreateVector(&k, 1);
    wire::ChangeBuilder cb(fbb);
    cb.add_table(table);
    cb.add_key(key);
    auto one = cb.Finish();
    std::vector<flatbuffers::Offset<wire::Change>> refs(*count, one);
    auto changes = fbb.CreateVector(refs);
    wire::ChangeModelBuilder mb(fbb);
    mb.add_generation(1);
    mb.add_first_seq(1);
    mb.add_last_seq(1);
    mb.add_changes(changes);
    fbb.Finish(wire::CreateFrame(fbb, wire::Message::ChangeModel, mb.Finish().Union()),
               wire::FrameIdentifier());
    return printFrame(Bytes(fbb.GetBufferPointer(), fbb.GetSize()));
}

int runUnverifiable() {
    wire::HelloFields h;
    h.protocolVersion = POSSYNC_PROTOCOL_VERSION;
    h.storeId = "any";
    h.deviceId = "wire-tool";
    auto payload = wire::buildHello(h);
    // The root offset (first 4 bytes) now points far past the end; the identifier stays "PSY1",
    // so only the FlatBuffers verifier can tell.
    putLe32(payload.data(), 0x7ffffff0u);
    return printFrame(Bytes(payload.data(), payload.size()));
}

int runDecode(const std::string& hex) {
    auto bytes = fromHex(hex);
    if (!bytes) return fail("decode takes the payload as hex");
    // FlatBuffers reads scalars in place: give it an 8-byte aligned copy.
    std::vector<uint64_t> aligned((bytes->size() + 7) / 8 + 1);
    std::memcpy(aligned.data(), bytes->data(), bytes->size());
    auto frame = wire::verifyFrame(Bytes(aligned.data(), bytes->size()));
    if (!frame) return fail(frame.error().message);
    const wire::Frame* f = *frame;
    switch (f->message_type()) {
        case wire::Message::Hello: {
            auto* h = f->message_as_Hello();
            auto pos = wire::positionOf(h->position());
            printf("Hello store=%s device=%s state=%s position=%s:%llu\n",
                   std::string(wire::textOf(h->store_id())).c_str(),
                   std::string(wire::textOf(h->device_id())).c_str(), wire::EnumNameSlaveState(h->state()),
                   hex64(pos.generation()).c_str(), (unsigned long long)pos.seq());
            return 0;
        }
        case wire::Message::Welcome: {
            auto* w = f->message_as_Welcome();
            if (w->refused())
                printf("Welcome refused code=%s reason=%s\n", wire::errorCodeName(w->code()),
                       std::string(wire::textOf(w->reason())).c_str());
            else
                printf("Welcome generation=%s head=%llu mode=%s\n", hex64(w->generation()).c_str(),
                       (unsigned long long)w->head_seq(), wire::EnumNameSyncMode(w->mode()));
            return 0;
        }
        case wire::Message::Error: {
            auto* e = f->message_as_Error();
            printf("Error code=%s text=%s\n", wire::errorCodeName(e->code()),
                   std::string(wire::textOf(e->text())).c_str());
            return 0;
        }
        case wire::Message::Ack: {
            auto pos = wire::positionOf(f->message_as_Ack()->position());
            printf("Ack position=%s:%llu\n", hex64(pos.generation()).c_str(), (unsigned long long)pos.seq());
            return 0;
        }
        default: printf("%s\n", wire::messageTypeName(f)); return 0;
    }
}

// A Ping as a slave sends it (a hostile peer floods a board with these).
int runPing() {
    auto p = wire::buildPing(1'700'000'000'000, 0);
    return printFrame(Bytes(p.data(), p.size()));
}

// ---- rogue-slave ------------------------------------------------------------------------------

// A blocking TCP link to 127.0.0.1 with the firmware's framing.
class SlaveLink {
public:
    ~SlaveLink() {
        if (fd_ >= 0) ::close(fd_);
    }
    bool connect(uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) return false;
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    bool send(Bytes payload) {
        std::vector<uint8_t> f = wire::encodeFrame(payload);
        size_t done = 0;
        while (done < f.size()) {
            ssize_t n = ::send(fd_, f.data() + done, f.size() - done, MSG_NOSIGNAL);
            if (n <= 0) return false;
            done += size_t(n);
        }
        return true;
    }
    // Ends our side (FIN) and reads past whatever comes until the peer closes: true when it did.
    bool finish(uint64_t timeoutMs) {
        ::shutdown(fd_, SHUT_WR);
        for (;;) {
            size_t size = 0;
            std::string why;
            if (!next(timeoutMs, size, why)) return why == "closed";
        }
    }
    // The next verified frame's payload (an aligned copy); nullopt on close, error or timeout.
    std::optional<std::vector<uint64_t>> next(uint64_t timeoutMs, size_t& size, std::string& why) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeoutMs);
        while (pending_.empty()) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                why = "timeout";
                return std::nullopt;
            }
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, int(left.count())) <= 0) continue;
            uint8_t buf[65536];
            ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                why = "closed";
                return std::nullopt;
            }
            auto st = decoder_.feed(Bytes(buf, size_t(n)), [&](Bytes payload) {
                pending_.emplace_back(payload.data, payload.data + payload.size);
                return Status();
            });
            if (!st) {
                why = "bad frame: " + st.error().message;
                return std::nullopt;
            }
        }
        std::vector<uint8_t> p = std::move(pending_.front());
        pending_.erase(pending_.begin());
        size = p.size();
        std::vector<uint64_t> aligned((p.size() + 7) / 8 + 1);
        std::memcpy(aligned.data(), p.data(), p.size());
        return aligned;
    }

private:
    int fd_ = -1;
    wire::FrameDecoder decoder_{64u << 20};
    std::vector<std::vector<uint8_t>> pending_;
};

std::vector<std::string> splitOn(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(cur);
    return out;
}

// Adds one stdin item (put:T:K:V ...) to `w`; false when it is not one.
bool addItem(wire::RequestWriter& w, const std::string& item) {
    auto p = splitOn(item, ':');
    auto bytes = [](const std::string& s) { return Bytes(s); };
    if (p[0] == "put" && p.size() == 4) {
        w.change(p[1], wire::Op::PUT, bytes(p[2]), bytes(p[3]));
    } else if (p[0] == "del" && p.size() == 3) {
        w.change(p[1], wire::Op::DEL, bytes(p[2]), Bytes());
    } else if (p[0] == "clear" && p.size() == 2) {
        w.change(p[1], wire::Op::CLEAR, Bytes(), Bytes());
    } else if ((p[0] == "add" && p.size() == 4) || (p[0] == "add4" && p.size() == 3)) {
        int64_t delta = 1;
        if (p[0] == "add") {
            char* end = nullptr;
            errno = 0;
            delta = std::strtoll(p[3].c_str(), &end, 10);
            if (errno || p[3].empty() || *end) return false;
        }
        uint8_t be[8];
        putBe64(be, uint64_t(delta));
        w.change(p[1], wire::Op::ADD, bytes(p[2]), Bytes(p[0] == "add" ? be : be + 4, p[0] == "add" ? 8 : 4));
    } else if (p[0] == "big" && p.size() == 4) {
        auto n = parseU64(p[3]);
        if (!n || *n > (512u << 20)) return false;
        std::string v(*n, 'b');
        w.change(p[1], wire::Op::PUT, bytes(p[2]), bytes(v));
    } else if (p[0] == "bigkey" && p.size() == 3) {
        auto n = parseU64(p[2]);
        if (!n || *n > (1u << 20)) return false;
        std::string k(*n, 'k');
        w.change(p[1], wire::Op::PUT, bytes(k), Bytes("v"));
    } else if ((p[0] == "absent" || p[0] == "present") && p.size() == 3) {
        w.condition(p[1], bytes(p[2]), p[0] == "absent" ? wire::Require::ABSENT : wire::Require::PRESENT, 0);
    } else {
        return false;
    }
    return true;
}

int runRogueSlave(const Options& o) {
    auto port = parseU64(option(o, "port"));
    std::string store = option(o, "store"), device = option(o, "device", "rogue-slave");
    auto version = parseU64(option(o, "version", std::to_string(POSSYNC_PROTOCOL_VERSION)));
    auto maxFrame = parseU64(option(o, "max-frame", std::to_string(wire::kDefaultMaxFrameBytes)));
    auto timeoutMs = parseU64(option(o, "timeout-ms", "10000"));
    const bool noWait = option(o, "no-wait", "0") == "1";
    if (!port || *port == 0 || *port > 65535 || store.empty() || !version || *version > UINT32_MAX ||
        !maxFrame || *maxFrame < 4096 || *maxFrame > UINT32_MAX || !timeoutMs)
        return fail(
            "rogue-slave needs --port P --store S (and numbers for --version, --max-frame, --timeout-ms)");
    wire::HelloFields h;
    h.protocolVersion = static_cast<uint32_t>(*version);
    h.storeId = store;
    h.deviceId = device;
    auto term = parseU64(option(o, "term", "0"));
    if (!term) return fail("--term takes a number");
    h.term = *term;
    if (std::string resuming = option(o, "resuming"); !resuming.empty()) {
        auto colon = resuming.find(':');
        auto gen = parseHex64(resuming.substr(0, colon));
        auto seq = colon == std::string::npos ? std::nullopt : parseU64(resuming.substr(colon + 1));
        if (!gen || !seq) return fail("--resuming takes GEN:SEQ (hex:decimal), not '" + resuming + "'");
        h.state = wire::SlaveState::RESUMING;
        h.position = wire::Position(*gen, *seq);
    }
    SlaveLink link;
    if (!link.connect(static_cast<uint16_t>(*port)))
        return fail("cannot connect to 127.0.0.1:" + option(o, "port"));
    auto hello = wire::buildHello(h);
    if (!link.send(Bytes(hello.data(), hello.size()))) return fail("cannot send the Hello");

    // Prints a message of interest; returns the frame (nullptr when it fails verification).
    auto show = [](const std::vector<uint64_t>& buf, size_t size) -> const wire::Frame* {
        auto frame = wire::verifyFrame(Bytes(reinterpret_cast<const uint8_t*>(buf.data()), size));
        if (!frame) {
            printf("unverifiable %s\n", frame.error().message.c_str());
            return nullptr;
        }
        const wire::Frame* f = *frame;
        if (f->message_type() == wire::Message::Error) {
            auto* e = f->message_as_Error();
            printf("Error code=%s text=%s\n", wire::errorCodeName(e->code()),
                   std::string(wire::textOf(e->text())).c_str());
        } else if (f->message_type() == wire::Message::WriteResult) {
            auto* r = f->message_as_WriteResult();
            printf("WriteResult id=%llu status=%s seq=%llu reason=%s\n", (unsigned long long)r->request_id(),
                   wire::EnumNameWriteStatus(r->status()), (unsigned long long)r->seq(),
                   std::string(wire::textOf(r->reason())).c_str());
        }
        fflush(stdout);
        return f;
    };
    size_t size = 0;
    std::string why;
    auto first = link.next(*timeoutMs, size, why);
    if (!first) {
        printf("%s\n", why.c_str());
        return 0;
    }
    const wire::Frame* wf = show(*first, size);
    if (!wf) return 0;
    if (wf->message_type() != wire::Message::Welcome) {
        printf("%s\n", wire::messageTypeName(wf));
        return 0;
    }
    auto* welcome = wf->message_as_Welcome();
    if (welcome->refused()) {
        printf("Welcome refused code=%s reason=%s\n", wire::errorCodeName(welcome->code()),
               std::string(wire::textOf(welcome->reason())).c_str());
        return 0;
    }
    const uint64_t generation = welcome->generation();
    printf("Welcome generation=%s head=%llu mode=%s\n", hex64(generation).c_str(),
           (unsigned long long)welcome->head_seq(), wire::EnumNameSyncMode(welcome->mode()));
    fflush(stdout);

    std::string line;
    uint64_t sentCount = 0;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        std::string word;
        if (!(in >> word)) continue;
        auto id = parseU64(word);
        if (!id) return fail("a request line starts with its id, not '" + word + "'");
        uint64_t gen = generation;
        wire::RequestWriter w;
        while (in >> word) {
            if (word.rfind("gen=", 0) == 0) {
                auto g = word == "gen=other" ? std::optional<uint64_t>(generation ^ 0x5a5a)
                                             : parseHex64(word.substr(4));
                if (!g) return fail("bad " + word);
                gen = *g;
            } else if (!addItem(w, word)) {
                return fail("not a request item: '" + word + "'");
            }
        }
        Bytes req = w.finish(device, *id, gen, 1'700'000'000'000);
        bool sent = true;
        if (req.size + wire::kFrameHeaderBytes > *maxFrame) {
            size_t piece = wire::fragmentDataBytes(static_cast<uint32_t>(*maxFrame));
            for (uint64_t off = 0; sent && off < req.size; off += piece) {
                size_t n = std::min<uint64_t>(piece, req.size - off);
                auto frag = wire::buildFragment(req.size, off, Bytes(req.data + off, n));
                sent = link.send(Bytes(frag.data(), frag.size()));
            }
        } else {
            sent = link.send(req);
        }
        if (!sent) {
            printf("closed\n");
            return 0;
        }
        if (noWait) {
            ++sentCount;
            continue;
        }
        // Everything up to this request's answer (change models, Pings) is read past.
        for (;;) {
            auto m = link.next(*timeoutMs, size, why);
            if (!m) {
                printf("%s\n", why.c_str());
                return 0;
            }
            const wire::Frame* f = show(*m, size);
            if (!f) return 0;
            if (f->message_type() == wire::Message::Error) {
                printf("closed\n");
                return 0;
            }
            if (f->message_type() == wire::Message::WriteResult &&
                f->message_as_WriteResult()->request_id() == *id)
                break;
        }
    }
    if (noWait) {
        if (!link.finish(*timeoutMs)) return fail("the master did not close the link after ours");
        printf("sent %llu\n", (unsigned long long)sentCount);
    }
    return 0;
}

int run(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string command = argv[1];
    if (command == "decode") return argc == 3 ? runDecode(argv[2]) : usage();
    if (command == "unverifiable") return argc == 2 ? runUnverifiable() : usage();
    if (command == "ping") return argc == 2 ? runPing() : usage();
    auto o = parseOptions(argc, argv);
    if (!o) return usage();
    if (command == "refs") return runRefs(*o);
    if (command == "hello") return runHello(*o);
    if (command == "welcome") return runWelcome(*o);
    if (command == "change") return runChange(*o);
    if (command == "chunk") return runChunk(*o);
    if (command == "rogue-slave") return runRogueSlave(*o);
    return usage();
}

}  // namespace
}  // namespace possync::scenario

int main(int argc, char** argv) {
    return possync::scenario::run(argc, argv);
}
