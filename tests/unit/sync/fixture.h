// The sync core's test fixture (the dqlite way): scripted links, explicit time, a SessionHost
// over a scratch store, and a connector/locator for the Replica. Nothing here opens a socket.
//
// - ManualTime: Clock + Timers; advance(ms) fires due timers in time order.
// - ScriptedLink: a Link whose sent frames land in a LinkProbe the test keeps (the session owns
//   the link); the probe injects failures: sends refused, a write queue that does not drain.
// - sentMessages(): decodes what a side sent with the real FrameDecoder and verifier.
// - TestHost: what a Master gives its sessions, over a real LMDB store in a temp dir.
// - TestConnector / TestLocator: the replica's connect step, completed by the test.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../store/fixture.h"
#include "possync_config.h"
#include "sync/clock.h"
#include "sync/link.h"
#include "sync/locator.h"
#include "sync/master.h"
#include "sync/master_session.h"
#include "sync/replica.h"
#include "sync/session_host.h"
#include "wire/change_model.h"
#include "wire/frame.h"
#include "wire/messages.h"

namespace possync::test {

// ---- time -------------------------------------------------------------------------------

class ManualTime final : public sync::Clock, public sync::Timers {
public:
    uint64_t nowMs() const override { return now_; }
    uint64_t wallMs() const override { return 1'700'000'000'000 + now_; }

    Result<std::unique_ptr<sync::Timer>> makeTimer() override {
        auto t = std::make_unique<ManualTimer>(*this);
        return std::unique_ptr<sync::Timer>(std::move(t));
    }

    // Moves time forward by `ms`, firing every timer that falls due, in time order.
    void advance(uint64_t ms) {
        uint64_t target = now_ + ms;
        for (int guard = 0; guard < 100000; ++guard) {
            ManualTimer* next = nullptr;
            for (auto* t : timers_)
                if (t->active_ && t->due_ <= target && (!next || t->due_ < next->due_)) next = t;
            if (!next) break;
            now_ = std::max(now_, next->due_);
            if (next->repeat_)
                next->due_ = now_ + next->repeat_;
            else
                next->active_ = false;
            auto cb = next->callback_;  // the callback may restart or destroy its timer
            cb();
        }
        now_ = target;
    }
    size_t activeTimers() const {
        return size_t(std::count_if(timers_.begin(), timers_.end(), [](auto* t) { return t->active_; }));
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

// ---- links ------------------------------------------------------------------------------

// What a ScriptedLink did, kept by the test after the session took the link.
struct LinkProbe {
    std::vector<uint8_t> sent;  // every byte accepted, in order (frames with headers)
    size_t sendCalls = 0;
    int refuseSendsAfter = -1;  // >= 0: that many more sends succeed, then every send fails
    size_t queued = 0;          // what queuedBytes() reports (a peer that does not read)
    bool shutdown = false;
    bool closed = false;
    bool alive = true;  // false once the link object was destroyed
    sync::LinkEvents* events = nullptr;

    // Consumes the sent bytes: what the peer would read.
    std::vector<uint8_t> take() { return std::exchange(sent, {}); }
};

class ScriptedLink final : public sync::Link {
public:
    explicit ScriptedLink(std::shared_ptr<LinkProbe> probe) : probe_(std::move(probe)) {}
    ~ScriptedLink() override { probe_->alive = false; }
    Status start(sync::LinkEvents& events) override {
        probe_->events = &events;
        return {};
    }
    Status send(std::vector<uint8_t> frame) override {
        POSSYNC_TRY(accept());
        probe_->sent.insert(probe_->sent.end(), frame.begin(), frame.end());
        return {};
    }
    Status sendShared(sync::SharedFrame frame) override {
        POSSYNC_TRY(accept());
        probe_->sent.insert(probe_->sent.end(), frame->begin(), frame->end());
        return {};
    }
    Status sendv(std::vector<std::vector<uint8_t>> frames) override {
        POSSYNC_TRY(accept());
        for (auto& f : frames) probe_->sent.insert(probe_->sent.end(), f.begin(), f.end());
        return {};
    }
    size_t queuedBytes() const override { return probe_->queued; }
    void shutdown() override { probe_->shutdown = true; }
    void close() override {
        probe_->closed = true;
        probe_->events = nullptr;
    }
    const std::string& peerName() const override { return name_; }

private:
    Status accept() {
        ++probe_->sendCalls;
        if (probe_->closed) return makeError(Errc::Closed, "link closed");
        if (probe_->refuseSendsAfter == 0) return makeError(Errc::Io, "injected write failure");
        if (probe_->refuseSendsAfter > 0) --probe_->refuseSendsAfter;
        return {};
    }
    std::shared_ptr<LinkProbe> probe_;
    std::string name_ = "127.0.0.1:4242";
};

// One decoded message (its own aligned copy of the payload).
struct Sent {
    std::vector<uint8_t> payload;
    const wire::Frame* frame() const {
        auto f = wire::verifyFrame(Bytes(payload.data(), payload.size()));
        REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message));
        return *f;
    }
    wire::Message type() const { return frame()->message_type(); }
};

// Decodes a byte stream of frames with the real decoder.
inline std::vector<Sent> decodeFrames(const std::vector<uint8_t>& bytes) {
    std::vector<Sent> out;
    wire::FrameDecoder d(64u << 20);
    auto st = d.feed(Bytes(bytes.data(), bytes.size()), [&](Bytes p) {
        out.push_back(Sent{std::vector<uint8_t>(p.data, p.data + p.size)});
        return Status();
    });
    REQUIRE_MESSAGE(st.ok(), (st.ok() ? "" : st.error().message));
    CHECK(d.buffered() == 0);
    return out;
}

// What was sent on `probe` since the last call.
inline std::vector<Sent> sentMessages(LinkProbe& probe) {
    return decodeFrames(probe.take());
}

inline std::vector<uint8_t> frameOf(const std::vector<uint8_t>& payload) {
    return wire::encodeFrame(Bytes(payload.data(), payload.size()));
}
inline std::vector<uint8_t> frameOf(Bytes payload) {
    return wire::encodeFrame(payload);
}

// ---- the master's side --------------------------------------------------------------------

class TestHost final : public sync::SessionHost {
public:
    explicit TestHost(store::Store& store) : store_(store) {
        cfg.storeId = "store1";
        cfg.deviceId = "master-dev";
        cfg.heartbeatMs = 1000;
        cfg.timeoutMs = 5000;
        cfg.window = 4;
        cfg.chunkBytes = 4096;
    }
    const sync::MasterConfig& config() const override { return cfg; }
    store::Store& store() override { return store_; }
    sync::Stats& stats() override { return statsValue; }
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
        v.history = rt->meta().history;
        v.term = rt->meta().term;
        rt->end();
        auto info = store_.logInfo();
        if (!info) return info.takeError();
        v.logFirst = info->first;
        return v;
    }
    void noteHelloTerm(const sync::MasterSession& session, uint64_t term) override {
        supersededTerm = term;
        supersededDevice = session.device();
    }
    std::shared_ptr<sync::Snapshot> snapshotForFull() override {
        ++snapshotsMade;
        auto m = store_.meta();
        REQUIRE(m.ok());
        return std::make_shared<sync::Snapshot>(store_, m->generation, m->watched, cfg.chunkBytes);
    }
    Result<sync::Chunk> chunk(sync::Snapshot& snap, uint32_t number, bool& shared) override {
        ++chunkCalls;
        if (busyChunks > 0) {
            // As Master::chunk answers while a worker's write transaction keeps LMDB from
            // opening a table new to this process.
            --busyChunks;
            return makeError(Errc::Busy, "a worker's write transaction is open");
        }
        auto c = snap.chunk(number);
        if (c) shared = c->shared;
        return c;
    }
    void sessionClosed(sync::MasterSession*) override { ++closedCalls; }

    sync::MasterConfig cfg;
    sync::Stats statsValue;
    ManualTime time;
    int snapshotsMade = 0;
    int closedCalls = 0;
    int chunkCalls = 0;
    int busyChunks = 0;  // the next chunk() calls that answer Errc::Busy
    uint64_t supersededTerm = 0;
    std::string supersededDevice;

private:
    store::Store& store_;
    mutable uint64_t head_ = 0;
};

// A master store with watched table "t" and `n` committed puts (one per transaction).
struct MasterSide {
    TempDir dir;
    std::unique_ptr<store::Store> store = openStore(dir.path());
    TestHost host{*store};

    explicit MasterSide(int n = 0, size_t valueBytes = 16) {
        REQUIRE_OK(store->setWatchedTables({"t"}));
        commit(n, valueBytes);
    }
    void commit(int n, size_t valueBytes = 16) {
        for (int i = 0; i < n; ++i) {
            auto w = store->beginWrite();
            REQUIRE_OK(w);
            std::string k = "k" + std::to_string(next_++), v(valueBytes, char('a' + next_ % 26));
            REQUIRE_OK(w->put("t", Bytes(k), Bytes(v)));
            REQUIRE_OK(w->commit());
        }
    }
    uint64_t generation() { return store->meta()->generation; }
    uint64_t head() { return store->meta()->seq; }

    // A started session over a scripted link; `probe` sees what it sends.
    std::unique_ptr<sync::MasterSession> open(std::shared_ptr<LinkProbe>& probe, uint64_t id = 1) {
        probe = std::make_shared<LinkProbe>();
        auto s = std::make_unique<sync::MasterSession>(host, std::make_unique<ScriptedLink>(probe), id);
        REQUIRE_OK(s->start());
        return s;
    }
    wire::HelloFields hello(bool resuming, uint64_t gen, uint64_t seq, bool accept = false) const {
        wire::HelloFields h;
        h.protocolVersion = POSSYNC_PROTOCOL_VERSION;
        h.storeId = "store1";
        h.deviceId = "slave-dev";
        h.state = resuming ? wire::SlaveState::RESUMING : wire::SlaveState::STARTING;
        h.position = wire::Position(gen, seq);
        h.acceptNewGeneration = accept;
        return h;
    }

private:
    int next_ = 0;
};

inline void deliver(sync::LinkEvents& to, const std::vector<uint8_t>& payload) {
    auto f = frameOf(payload);
    to.onData(Bytes(f.data(), f.size()));
}

// ---- the slave's side ---------------------------------------------------------------------

class TestLocator final : public sync::Locator {
public:
    Result<sync::MasterTarget> choose() override {
        if (!available) return makeError(Errc::NotFound, "no master found");
        return sync::MasterTarget{"127.0.0.1", port, device, "test", term};
    }
    void setOnChange(std::function<void()> fn) override { onChange = std::move(fn); }
    std::string describe() const override { return "test locator"; }
    bool available = true;
    uint16_t port = 7700;
    std::string device = "master-dev";
    uint64_t term = 0;
    std::function<void()> onChange;
};

class TestConnector final : public sync::Connector {
public:
    struct Attempt {
        Callback done;
        bool cancelled = false;
    };
    class Pending final : public sync::PendingLink {
    public:
        explicit Pending(std::shared_ptr<Attempt> a) : attempt_(std::move(a)) {}
        ~Pending() override { attempt_->cancelled = true; }

    private:
        std::shared_ptr<Attempt> attempt_;
    };
    Result<std::unique_ptr<sync::PendingLink>> connect(const sync::MasterTarget&, Callback done) override {
        auto a = std::make_shared<Attempt>();
        a->done = std::move(done);
        attempts.push_back(a);
        return std::unique_ptr<sync::PendingLink>(std::make_unique<Pending>(a));
    }
    // Completes the newest attempt with a scripted link; returns its probe.
    std::shared_ptr<LinkProbe> accept() {
        REQUIRE_FALSE(attempts.empty());
        auto a = attempts.back();
        REQUIRE_FALSE(a->cancelled);
        auto probe = std::make_shared<LinkProbe>();
        auto cb = a->done;
        cb(std::unique_ptr<sync::Link>(std::make_unique<ScriptedLink>(probe)));
        return probe;
    }
    void refuse() {
        auto a = attempts.back();
        auto cb = a->done;
        cb(makeError(Errc::Io, "connection refused"));
    }
    std::vector<std::shared_ptr<Attempt>> attempts;
};

struct SlaveSide {
    TempDir dir;
    std::unique_ptr<store::Store> store = openStore(dir.path());
    ManualTime time;
    TestConnector connector;
    TestLocator locator;
    std::unique_ptr<sync::Replica> replica;

    explicit SlaveSide(bool acceptNewGeneration = false) {
        REQUIRE_OK(store->setRole(store::Role::Slave));
        sync::ReplicaConfig rc;
        rc.storeId = "store1";
        rc.deviceId = "slave-dev";
        rc.heartbeatMs = 1000;
        rc.timeoutMs = 5000;
        rc.backoffMinMs = 500;
        rc.backoffMaxMs = 4000;
        rc.acceptNewGeneration = acceptNewGeneration;
        auto r = sync::Replica::create(time, time, connector, *store, locator, rc);
        REQUIRE_OK(r);
        replica = std::move(*r);
    }
    // Starts (or waits out the backoff) until a link is up and the Hello is sent; the probe.
    std::shared_ptr<LinkProbe> connect() {
        if (replica->state() == sync::ReplicaState::Backoff && !started_) {
            replica->start();
            started_ = true;
        }
        for (int i = 0; i < 200 && replica->state() != sync::ReplicaState::Connecting; ++i) time.advance(100);
        REQUIRE(replica->state() == sync::ReplicaState::Connecting);
        auto probe = connector.accept();
        REQUIRE(replica->state() == sync::ReplicaState::AwaitWelcome);
        return probe;
    }
    std::string get(const std::string& key) {
        auto rt = store->beginRead();
        REQUIRE_OK(rt);
        auto v = rt->get("t", Bytes(key));
        if (!v || !*v) return "<none>";  // no such table yet, or no such key
        return std::string(reinterpret_cast<const char*>((*v)->data), (*v)->size);
    }

private:
    bool started_ = false;
};

// Moves everything one side sent to the other until both are quiet (bounded).
inline void pumpBetween(LinkProbe& masterProbe, sync::LinkEvents& slave, LinkProbe& slaveProbe,
                        sync::LinkEvents& master) {
    for (int i = 0; i < 10000; ++i) {
        auto toSlave = masterProbe.take();
        auto toMaster = slaveProbe.take();
        if (toSlave.empty() && toMaster.empty()) return;
        if (!toSlave.empty() && slaveProbe.events) slave.onData(Bytes(toSlave.data(), toSlave.size()));
        if (!toMaster.empty() && masterProbe.events) master.onData(Bytes(toMaster.data(), toMaster.size()));
    }
    FAIL("links never went quiet");
}

// ---- scripted messages ------------------------------------------------------------------

inline const wire::Welcome* welcomeOf(const Sent& m) {
    REQUIRE(m.type() == wire::Message::Welcome);
    return m.frame()->message_as_Welcome();
}

// The (first, last) seq ranges of the INCREMENTAL change models in `msgs`.
inline std::vector<std::pair<uint64_t, uint64_t>> ranges(const std::vector<Sent>& msgs) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    for (const auto& m : msgs)
        if (m.type() == wire::Message::ChangeModel) {
            auto* cm = m.frame()->message_as_ChangeModel();
            if (cm->flag() == wire::SyncMode::INCREMENTAL) out.emplace_back(cm->first_seq(), cm->last_seq());
        }
    return out;
}

inline std::vector<const wire::ChangeModel*> chunks(const std::vector<Sent>& msgs) {
    std::vector<const wire::ChangeModel*> out;
    for (const auto& m : msgs)
        if (m.type() == wire::Message::ChangeModel &&
            m.frame()->message_as_ChangeModel()->flag() == wire::SyncMode::FULL)
            out.push_back(m.frame()->message_as_ChangeModel());
    return out;
}

// The Error frame a closing session sent last (NONE when it sent none).
inline wire::ErrorCode lastError(const std::vector<Sent>& msgs) {
    for (auto it = msgs.rbegin(); it != msgs.rend(); ++it)
        if (it->type() == wire::Message::Error) return it->frame()->message_as_Error()->code();
    return wire::ErrorCode::NONE;
}

inline constexpr uint64_t kGen = 0x1234;

inline std::vector<uint8_t> welcome(wire::SyncMode mode, uint64_t gen = kGen, uint64_t head = 10) {
    wire::WelcomeFields w;
    w.deviceId = "master-dev";
    w.generation = gen;
    w.headSeq = head;
    w.mode = mode;
    w.heartbeatMs = 1000;
    return wire::buildWelcome(w);
}

// A FULL chunk holding key=value pairs of table "t".
inline std::vector<uint8_t> chunk(uint32_t number, bool last, uint64_t readSeq,
                                  std::initializer_list<std::pair<const char*, const char*>> kv) {
    wire::ChangeModelWriter w;
    for (auto& [k, v] : kv) w.put("t", Bytes(k), Bytes(v));
    Bytes b = w.finishFull(kGen, readSeq, number, last, {"t"});
    return std::vector<uint8_t>(b.data, b.data + b.size);
}

inline std::vector<uint8_t> change(uint64_t seq, const char* k, const char* v) {
    wire::ChangeModelWriter w;
    w.put("t", Bytes(k), Bytes(v));
    Bytes b = w.finishIncremental(kGen, seq, seq);
    return std::vector<uint8_t>(b.data, b.data + b.size);
}

// Takes a slave to INCREMENTAL streaming at (kGen, 5) holding a=1.
inline void streamingAt5(SlaveSide& s, std::shared_ptr<LinkProbe>& probe) {
    probe = s.connect();
    deliver(*s.replica, welcome(wire::SyncMode::FULL));
    deliver(*s.replica, chunk(0, true, 5, {{"a", "1"}}));
    REQUIRE(s.replica->state() == sync::ReplicaState::Streaming);
    REQUIRE(s.replica->status().position == 5);
    (void)sentMessages(*probe);
}

}  // namespace possync::test
