// Fuzz target: the master's handling of everything a slave (or anything that connects) sends.
//
// One MasterSession per input, over the same socketless pieces as the unit tests
// (tests/unit/sync/fixture.h, without doctest): a SessionHost over a scratch master store
// (opened and filled once per process, never written afterwards: 40 commits to watched tables
// "t" and "u", values up to 3,000 bytes, the log trimmed to its last 30 entries so old
// positions need FULL), a scripted Link and explicit time.
//
// The input is a sequence of records, each [tag][len lo][len hi][len bytes]:
//   tag & 3 == 0  a payload: framed with wire::encodeFrame (valid header and checksums, so the
//                 fuzzer reaches the FlatBuffers and the session logic) after every 8-byte
//                 occurrence of kGenMagic is replaced by the store's generation (seeds cannot
//                 know it); fed in reads of a size picked by tag >> 4
//   tag & 3 == 1  raw bytes fed as they are (headers, checksums, garbage), same read sizes
//   tag & 3 == 2  time: advance by (len + 256 * (tag >> 2)) * 10 ms (heartbeats, Pings,
//                 timeouts, the pump's safety net); no bytes follow
//   tag & 3 == 3  link events by tag bits: 0x04 the peer stops reading (queuedBytes() over the
//                 send buffer), 0x08 it reads again, 0x10 onSent(), 0x20 sends fail from now,
//                 0x40 the peer closes (onClosed), 0x80 a link error; no bytes follow
// A record cut short by the end of the input is used as far as it goes.
//
// Invariants (a failure aborts, which libFuzzer reports as a crash):
//   - every byte the master sends decodes as frames that pass verifyFrame (no malformed
//     output, whatever came in), and no data (ChangeModel, Fragment) goes before a Welcome;
//   - the session is Closed exactly when it told its host so (once), and then its link is
//     closed; otherwise it is in AwaitHello, Full or Streaming;
//   - the acknowledged position never passes the master's head.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "log/log.h"

#include "fuzz_target.h"
#include "store/store.h"
#include "sync/clock.h"
#include "sync/link.h"
#include "sync/master.h"
#include "sync/master_session.h"
#include "sync/session_host.h"
#include "wire/frame.h"
#include "wire/messages.h"

using namespace possync;

namespace {

// Seeds write this where the master's generation goes (make_seeds.cc uses the same value).
constexpr uint64_t kGenMagic = 0x47454e4d41474943ULL;  // "CIGAMNEG" little-endian

#define FUZZ_CHECK(cond, what)                                          \
    do {                                                                \
        if (!(cond)) {                                                  \
            std::fprintf(stderr, "fuzz_master: invariant: %s\n", what); \
            std::abort();                                               \
        }                                                               \
    } while (0)

class ManualTime final : public sync::Clock, public sync::Timers {
public:
    uint64_t nowMs() const override { return now_; }
    uint64_t wallMs() const override { return 1'700'000'000'000 + now_; }
    Result<std::unique_ptr<sync::Timer>> makeTimer() override {
        return std::unique_ptr<sync::Timer>(std::make_unique<ManualTimer>(*this));
    }
    // Fires due timers in time order (bounded: a timer re-arming at 0 cannot spin forever).
    void advance(uint64_t ms) {
        uint64_t target = now_ + ms;
        for (int guard = 0; guard < 10000; ++guard) {
            ManualTimer* next = nullptr;
            for (auto* t : timers_)
                if (t->active_ && t->due_ <= target && (!next || t->due_ < next->due_)) next = t;
            if (!next) break;
            now_ = std::max(now_, next->due_);
            if (next->repeat_)
                next->due_ = now_ + next->repeat_;
            else
                next->active_ = false;
            auto cb = next->callback_;
            cb();
        }
        now_ = target;
    }

private:
    class ManualTimer final : public sync::Timer {
    public:
        explicit ManualTimer(ManualTime& time) : time_(time) { time_.timers_.push_back(this); }
        ~ManualTimer() override { std::erase(time_.timers_, this); }
        void start(uint64_t timeoutMs, uint64_t repeatMs, std::function<void()> callback) override {
            due_ = time_.now_ + timeoutMs;
            repeat_ = repeatMs;
            callback_ = std::move(callback);
            active_ = true;
        }
        void stop() override { active_ = false; }
        bool active() const override { return active_; }

        ManualTime& time_;
        uint64_t due_ = 0, repeat_ = 0;
        bool active_ = false;
        std::function<void()> callback_;
    };
    uint64_t now_ = 1000;
    std::vector<ManualTimer*> timers_;
};

// What the scripted link did; kept by the target after the session took the link.
struct Probe {
    std::vector<uint8_t> sent;
    size_t queued = 0;
    bool failSends = false;
    bool closed = false;
};

class FuzzLink final : public sync::Link {
public:
    explicit FuzzLink(Probe& probe) : probe_(probe) {}
    Status start(sync::LinkEvents&) override { return {}; }
    Status send(std::vector<uint8_t> frame) override {
        POSSYNC_TRY(accept());
        probe_.sent.insert(probe_.sent.end(), frame.begin(), frame.end());
        return {};
    }
    Status sendShared(sync::SharedFrame frame) override {
        POSSYNC_TRY(accept());
        probe_.sent.insert(probe_.sent.end(), frame->begin(), frame->end());
        return {};
    }
    Status sendv(std::vector<std::vector<uint8_t>> frames) override {
        POSSYNC_TRY(accept());
        for (auto& f : frames) probe_.sent.insert(probe_.sent.end(), f.begin(), f.end());
        return {};
    }
    size_t queuedBytes() const override { return probe_.queued; }
    void shutdown() override {}
    void close() override { probe_.closed = true; }
    const std::string& peerName() const override { return name_; }

private:
    Status accept() {
        if (probe_.closed) return makeError(Errc::Closed, "link closed");
        if (probe_.failSends) return makeError(Errc::Io, "injected write failure");
        return {};
    }
    Probe& probe_;
    std::string name_ = "127.0.0.1:4242";
};

class FuzzHost final : public sync::SessionHost {
public:
    explicit FuzzHost(store::Store& store) : store_(store) {
        cfg.storeId = "store1";
        cfg.deviceId = "master-dev";
        cfg.heartbeatMs = 1000;
        cfg.timeoutMs = 5000;
        cfg.window = 4;
        cfg.chunkBytes = 4096;
        cfg.maxFrameBytes = 64 * 1024;
        cfg.sendBufferBytes = 64 * 1024;
    }
    const sync::MasterConfig& config() const override { return cfg; }
    store::Store& store() override { return store_; }
    sync::Stats& stats() override { return stats_; }
    sync::Clock& clock() override { return time; }
    sync::Timers& timers() override { return time; }
    uint64_t head() const override { return head_; }
    Result<sync::MasterView> view() override {
        auto rt = store_.beginRead();
        if (!rt) return rt.takeError();
        sync::MasterView v;
        v.generation = rt->meta().generation;
        v.head = head_ = rt->meta().seq;
        v.resyncSeq = rt->meta().resyncSeq;
        rt->end();
        auto info = store_.logInfo();
        if (!info) return info.takeError();
        v.logFirst = info->first;
        return v;
    }
    std::shared_ptr<sync::Snapshot> snapshotForFull() override {
        auto m = store_.meta();
        FUZZ_CHECK(m.ok(), "read meta");
        return std::make_shared<sync::Snapshot>(store_, m->generation, m->watched, cfg.chunkBytes);
    }
    Result<sync::Chunk> chunk(sync::Snapshot& snap, uint32_t number, bool& shared) override {
        auto c = snap.chunk(number);
        if (c) shared = c->shared;
        return c;
    }
    void sessionClosed(sync::MasterSession*) override { ++closedCalls; }
    // Slave writes: the store is never written (it is shared by every input), so a WriteRequest
    // gets an answer as if applied at the head, or rejected when its id is odd: the session's
    // handling (bounds, answers, pumping) is what this target fuzzes; Store::applyRequest has
    // its unit tests.
    void submitRequest(sync::MasterSession& session, std::vector<uint8_t> frame) override {
        const wire::WriteRequest* r = wire::GetFrame(frame.data())->message_as_WriteRequest();
        store::RequestOutcome o;
        o.result.requestId = r->request_id();
        o.result.rejected = r->request_id() % 2 == 1;
        o.result.seq = o.result.rejected ? 0 : head_;
        if (o.result.rejected) o.result.reason = "fuzz";
        session.requestDone(o);
    }

    sync::MasterConfig cfg;
    ManualTime time;
    int closedCalls = 0;

private:
    store::Store& store_;
    sync::Stats stats_;
    mutable uint64_t head_ = 0;
};

// The scratch master store, filled once per process.
class Scratch final {
public:
    ~Scratch() {
        store_.reset();
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
    }
    store::Store& get() {
        if (!store_) open();
        return *store_;
    }
    uint64_t generation() const { return generation_; }
    uint64_t head() const { return head_; }

private:
    void open() {
        char tmpl[] = "/tmp/possync-fuzz-master-XXXXXX";
        char* p = mkdtemp(tmpl);
        FUZZ_CHECK(p != nullptr, "mkdtemp");
        dir_ = p;
        store::StoreOptions o;
        o.noSync = true;
        o.mapSize = size_t(64) << 20;
        o.deviceId = "master-dev";
        auto s = store::Store::open(dir_, o);
        FUZZ_CHECK(s.ok(), "open the scratch store");
        store_ = std::move(s).value();
        FUZZ_CHECK(store_->setWatchedTables({"t", "u"}).ok(), "watch t, u");
        for (int i = 0; i < 40; ++i) {
            auto w = store_->beginWrite();
            FUZZ_CHECK(w.ok(), "begin write");
            std::string k = "k" + std::to_string(i % 25),
                        v(size_t(i % 7 == 0 ? 3000 : 20 + i), char('a' + i % 26));
            FUZZ_CHECK(w->put(i % 3 ? "t" : "u", Bytes(k), Bytes(v)).ok(), "put");
            if (i % 5 == 4) FUZZ_CHECK(w->del("t", Bytes("k" + std::to_string(i - 2))).ok(), "del");
            FUZZ_CHECK(w->commit().ok(), "commit");
        }
        store::TrimLimits keep30;
        keep30.maxEntries = keep30.hardMaxEntries = 30;
        FUZZ_CHECK(store_->trimLog(keep30).ok(), "trim the log");
        auto m = store_->meta();
        FUZZ_CHECK(m.ok(), "meta");
        generation_ = m->generation;
        head_ = m->seq;
    }

    std::string dir_;
    std::unique_ptr<store::Store> store_;
    uint64_t generation_ = 0, head_ = 0;
};

Scratch& scratch() {
    static Scratch s;
    return s;
}

// Checks and drops what the master sent so far (every frame must verify).
void checkSent(Probe& probe, bool& sawWelcome) {
    if (probe.sent.empty()) return;
    wire::FrameDecoder d(64u << 20);
    auto st = d.feed(Bytes(probe.sent.data(), probe.sent.size()), [&](Bytes payload) -> Status {
        auto f = wire::verifyFrame(payload);
        FUZZ_CHECK(f.ok(), "the master sent a frame that does not verify");
        auto type = (*f)->message_type();
        if (type == wire::Message::Welcome) sawWelcome = true;
        if (type == wire::Message::ChangeModel || type == wire::Message::Fragment)
            FUZZ_CHECK(sawWelcome, "data only after a Welcome");
        return {};
    });
    FUZZ_CHECK(st.ok() && d.buffered() == 0, "the master's output is whole frames");
    probe.sent.clear();
}

void feed(sync::MasterSession& s, Bytes bytes, size_t readSize) {
    for (size_t off = 0; off < bytes.size && !s.closed();) {
        size_t n = std::min(readSize, bytes.size - off);
        s.onData(Bytes(bytes.data + off, n));
        off += n;
    }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    log::setStderr(false);
    log::setAllLevels(log::Level::Fatal);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static constexpr size_t kReadSizes[16] = {SIZE_MAX, 1,  2,   3,   5,    8, 15, 16,
                                              17,       64, 100, 509, 4096, 7, 31, 1000};
    store::Store& st = scratch().get();
    uint8_t gen[8];
    for (int i = 0; i < 8; ++i) gen[i] = uint8_t(scratch().generation() >> (8 * i));

    FuzzHost host(st);
    Probe probe;
    auto session = std::make_unique<sync::MasterSession>(host, std::make_unique<FuzzLink>(probe), 1);
    FUZZ_CHECK(session->start().ok(), "start");
    bool sawWelcome = false;

    for (size_t off = 0; off < size && !session->closed();) {
        uint8_t tag = data[off++];
        size_t len = 0;
        if (off < size) len = data[off++];
        if (off < size) len |= size_t(data[off++]) << 8;
        switch (tag & 3) {
            case 0:
            case 1: {
                size_t n = std::min(len, size - off);
                std::vector<uint8_t> bytes(data + off, data + off + n);
                off += n;
                if ((tag & 3) == 0) {
                    for (size_t i = 0; i + 8 <= bytes.size(); ++i) {
                        uint64_t v = 0;
                        std::memcpy(&v, bytes.data() + i, 8);
                        if (v == kGenMagic) std::memcpy(bytes.data() + i, gen, 8);
                    }
                    bytes = wire::encodeFrame(Bytes(bytes.data(), bytes.size()));
                }
                feed(*session, Bytes(bytes.data(), bytes.size()), kReadSizes[tag >> 4]);
                break;
            }
            case 2: host.time.advance((len + 256 * size_t(tag >> 2)) * 10); break;
            case 3:
                if (tag & 0x04) probe.queued = host.cfg.sendBufferBytes + 1;
                if (tag & 0x08) probe.queued = 0;
                if (tag & 0x20) probe.failSends = true;
                if (tag & 0x10) session->onSent();
                if (tag & 0x40) session->onClosed(Status());
                if ((tag & 0x80) && !session->closed())
                    session->onClosed(makeError(Errc::Io, "reset by peer"));
                break;
        }
        checkSent(probe, sawWelcome);
        if (!session->closed())
            FUZZ_CHECK(session->info().ackedSeq <= scratch().head(), "acknowledged past the head");
    }
    checkSent(probe, sawWelcome);

    auto state = session->state();
    // POSSYNC_FUZZ_VERBOSE=1 fuzz_replay_master FILE...: where each input left the session.
    static const bool verbose = std::getenv("POSSYNC_FUZZ_VERBOSE") != nullptr;
    if (verbose)
        std::fprintf(stderr, "fuzz_master: %s, acked %llu, frames in %llu out %llu, FULL %llu, errors %zu\n",
                     sync::sessionStateName(state), static_cast<unsigned long long>(session->info().ackedSeq),
                     static_cast<unsigned long long>(host.stats().framesIn),
                     static_cast<unsigned long long>(host.stats().framesOut),
                     static_cast<unsigned long long>(host.stats().fullSyncs), host.stats().errors.size());
    if (session->closed()) {
        FUZZ_CHECK(host.closedCalls == 1, "a closed session told its host exactly once");
        FUZZ_CHECK(probe.closed, "a closed session closed its link");
    } else {
        FUZZ_CHECK(host.closedCalls == 0, "an open session told its host it closed");
        FUZZ_CHECK(state == sync::SessionState::AwaitHello || state == sync::SessionState::Full ||
                       state == sync::SessionState::Streaming,
                   "an open session is in a legal state");
        // The end of the input is the peer going away.
        session->onClosed(Status());
        FUZZ_CHECK(session->closed() && host.closedCalls == 1, "closes when the peer goes away");
    }
    session.reset();  // the Master deletes closed sessions on a later loop turn: here, now
    return 0;
}
