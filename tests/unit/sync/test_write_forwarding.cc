// Slave writes (DESIGN.md §9) through the sync core without sockets: the master session applying
// WriteRequests and answering WriteResults, the replica forwarding its outbox windowed, resending
// on a new link, holding another generation's requests and settling rejections.
#include <doctest/doctest.h>

#include <deque>

#include "fixture.h"

using namespace possync;
using namespace possync::test;
using sync::ReplicaState;
using sync::SessionState;

namespace {

// A WriteRequest frame payload of `device` putting key=value into table "t".
std::vector<uint8_t> request(uint64_t id, uint64_t generation, const char* key, const char* value,
                             const char* device = "slave-dev") {
    wire::RequestWriter w;
    w.change("t", wire::Op::PUT, Bytes(key), Bytes(value));
    Bytes b = w.finish(device, id, generation, 1'700'000'000'000);
    return std::vector<uint8_t>(b.data, b.data + b.size);
}

std::vector<const wire::WriteResult*> results(const std::vector<Sent>& msgs) {
    std::vector<const wire::WriteResult*> out;
    for (const auto& m : msgs)
        if (m.type() == wire::Message::WriteResult) out.push_back(m.frame()->message_as_WriteResult());
    return out;
}

std::vector<uint64_t> requestIds(const std::vector<Sent>& msgs) {
    std::vector<uint64_t> out;
    for (const auto& m : msgs)
        if (m.type() == wire::Message::WriteRequest)
            out.push_back(m.frame()->message_as_WriteRequest()->request_id());
    return out;
}

// A session past its Hello, resuming at the master's head.
std::unique_ptr<sync::MasterSession> streaming(MasterSide& m, std::shared_ptr<LinkProbe>& probe) {
    auto s = m.open(probe);
    deliver(*s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    REQUIRE(s->state() == SessionState::Streaming);
    (void)sentMessages(*probe);
    return s;
}

// A host that keeps the requests instead of applying them (a busy worker): nothing is answered.
class HoldingHost final : public sync::SessionHost {
public:
    explicit HoldingHost(TestHost& inner) : inner_(inner) {}
    const sync::MasterConfig& config() const override { return inner_.config(); }
    store::Store& store() override { return inner_.store(); }
    sync::Stats& stats() override { return inner_.stats(); }
    sync::Clock& clock() override { return inner_.clock(); }
    sync::Timers& timers() override { return inner_.timers(); }
    uint64_t head() const override { return inner_.head(); }
    Result<sync::MasterView> view() override { return inner_.view(); }
    std::shared_ptr<sync::Snapshot> snapshotForFull() override { return inner_.snapshotForFull(); }
    Result<sync::Chunk> chunk(sync::Snapshot& snap, uint32_t number, bool& shared) override {
        return inner_.chunk(snap, number, shared);
    }
    void sessionClosed(sync::MasterSession* s) override { inner_.sessionClosed(s); }
    void submitRequest(sync::MasterSession&, std::vector<uint8_t> frame) override {
        held.push_back(std::move(frame));
    }

    std::deque<std::vector<uint8_t>> held;

private:
    TestHost& inner_;
};

// Commits `n` forwarded puts on a slave's directory; their request ids.
std::vector<uint64_t> queue(SlaveSide& s, int n, const std::string& prefix = "w") {
    std::vector<uint64_t> ids;
    for (int i = 0; i < n; ++i) {
        auto w = s.store->beginWrite();
        REQUIRE_OK(w);
        REQUIRE(w->forwarding());
        std::string k = prefix + std::to_string(i);
        REQUIRE_OK(w->put("t", Bytes(k), Bytes("v")));
        auto c = w->commitWrite();
        REQUIRE_OK(c);
        REQUIRE(c->request > 0);
        ids.push_back(c->request);
    }
    return ids;
}

std::vector<uint8_t> writeResult(uint64_t id, uint64_t seq, bool rejected = false, const char* why = "") {
    return wire::buildWriteResult(id, rejected ? wire::WriteStatus::REJECTED : wire::WriteStatus::COMMITTED,
                                  seq, why);
}

// The master's change model carrying request `id`'s origin (its put of key=v). The origin names
// the board that wrote the request: the device id of its store (what its requests carry).
std::vector<uint8_t> originChange(SlaveSide& s, uint64_t seq, uint64_t id, const char* key,
                                  uint64_t gen = kGen) {
    auto meta = s.store->meta();
    REQUIRE_OK(meta);
    wire::ChangeModelWriter w;
    w.put("t", Bytes(key), Bytes("v"));
    wire::OriginFields o;
    o.deviceId = meta->device;
    o.requestId = id;
    Bytes b = w.finishIncremental(gen, seq, seq, &o);
    return std::vector<uint8_t>(b.data, b.data + b.size);
}

uint64_t outboxCount(SlaveSide& s) {
    auto info = s.store->outboxInfo();
    REQUIRE_OK(info);
    return info->count;
}

}  // namespace

// ---- the master's side --------------------------------------------------------------------------

TEST_CASE(
    "master: a WriteRequest is applied, answered COMMITTED with its seq, then streamed with its origin") {
    MasterSide m(3);
    std::shared_ptr<LinkProbe> probe;
    auto s = streaming(m, probe);
    uint64_t head = m.head();
    deliver(*s, request(1, m.generation(), "x", "1"));
    CHECK_FALSE(s->closed());
    auto msgs = sentMessages(*probe);
    auto res = results(msgs);
    REQUIRE(res.size() == 1);
    CHECK(res[0]->request_id() == 1);
    CHECK(res[0]->status() == wire::WriteStatus::COMMITTED);
    CHECK(res[0]->seq() == head + 1);
    CHECK(m.head() == head + 1);
    // The WriteResult goes first, then the log entry with its origin.
    REQUIRE(msgs.size() == 2);
    CHECK(msgs[0].type() == wire::Message::WriteResult);
    REQUIRE(msgs[1].type() == wire::Message::ChangeModel);
    auto* cm = msgs[1].frame()->message_as_ChangeModel();
    CHECK(cm->first_seq() == head + 1);
    REQUIRE(cm->origin() != nullptr);
    CHECK(wire::textOf(cm->origin()->device_id()) == "slave-dev");
    CHECK(cm->origin()->request_id() == 1);
    CHECK(cm->origin()->status() == wire::WriteStatus::COMMITTED);
    REQUIRE(cm->changes() != nullptr);
    CHECK(cm->changes()->size() == 1);
    CHECK(m.host.statsValue.requestsIn == 1);
}

TEST_CASE("master: a resent request gets the same result and is not applied twice") {
    MasterSide m(1);
    std::shared_ptr<LinkProbe> probe;
    auto s = streaming(m, probe);
    deliver(*s, request(7, m.generation(), "x", "1"));
    auto first = sentMessages(*probe);
    REQUIRE(results(first).size() == 1);
    uint64_t seq = results(first)[0]->seq();
    uint64_t head = m.head();
    deliver(*s, wire::buildAck(wire::Position(m.generation(), head)));
    (void)sentMessages(*probe);
    // The same request again (a slave that lost the answer), on this link and on a new one.
    deliver(*s, request(7, m.generation(), "x", "2"));
    auto againMsgs = sentMessages(*probe);  // results() points into these frames
    auto again = results(againMsgs);
    REQUIRE(again.size() == 1);
    CHECK(again[0]->request_id() == 7);
    CHECK(again[0]->status() == wire::WriteStatus::COMMITTED);
    CHECK(again[0]->seq() == seq);
    std::shared_ptr<LinkProbe> probe2;
    auto s2 = streaming(m, probe2);
    deliver(*s2, request(7, m.generation(), "x", "3"));
    auto thirdMsgs = sentMessages(*probe2);
    auto third = results(thirdMsgs);
    REQUIRE(third.size() == 1);
    CHECK(third[0]->seq() == seq);
    CHECK(m.head() == head);
    auto rt = m.store->beginRead();
    REQUIRE_OK(rt);
    auto v = rt->get("t", Bytes("x"));
    REQUIRE_OK(v);
    REQUIRE(v->has_value());
    CHECK(std::string(reinterpret_cast<const char*>((**v).data), (**v).size) == "1");
    rt->end();
    auto clients = m.store->clients();
    REQUIRE_OK(clients);
    REQUIRE(clients->size() == 1);
    CHECK((*clients)[0].device == "slave-dev");
    CHECK((*clients)[0].lastRequest == 7);
    CHECK((*clients)[0].applied == 1);
}

TEST_CASE("master: a WriteRequest before the Hello closes the link") {
    MasterSide m(1);
    std::shared_ptr<LinkProbe> probe;
    auto s = m.open(probe);
    uint64_t head = m.head();
    deliver(*s, request(1, m.generation(), "x", "1"));
    CHECK(s->closed());
    CHECK(probe->closed);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::PROTOCOL);
    CHECK(m.head() == head);
}

TEST_CASE("master: a WriteRequest of another device than the Hello's closes the link") {
    MasterSide m(1);
    std::shared_ptr<LinkProbe> probe;
    auto s = streaming(m, probe);
    uint64_t head = m.head();
    deliver(*s, request(1, m.generation(), "x", "1", "other-dev"));
    CHECK(s->closed());
    CHECK(probe->closed);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::PROTOCOL);
    CHECK(m.head() == head);
    auto clients = m.store->clients();
    REQUIRE_OK(clients);
    CHECK(clients->empty());
}

TEST_CASE("master: more than 2*kRequestWindow unanswered requests close the link") {
    MasterSide m(1);
    HoldingHost host(m.host);
    auto probe = std::make_shared<LinkProbe>();
    sync::MasterSession s(host, std::make_unique<ScriptedLink>(probe), 1);
    REQUIRE_OK(s.start());
    deliver(s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    REQUIRE(s.state() == SessionState::Streaming);
    for (uint64_t id = 1; id <= 2 * sync::kRequestWindow; ++id)
        deliver(s, request(id, m.generation(), "x", "1"));
    CHECK_FALSE(s.closed());
    CHECK(host.held.size() == 2 * sync::kRequestWindow);
    deliver(s, request(2 * sync::kRequestWindow + 1, m.generation(), "x", "1"));
    CHECK(s.closed());
    CHECK(host.held.size() == 2 * sync::kRequestWindow);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::PROTOCOL);
}

// ---- the slave's side ---------------------------------------------------------------------------

TEST_CASE("replica: forwards the outbox in id order, kRequestWindow in flight, more after WriteResults") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    const int n = int(sync::kRequestWindow) + 8;
    auto ids = queue(s, n);
    s.replica->outboxChanged();
    auto sent = requestIds(sentMessages(*probe));
    REQUIRE(sent.size() == sync::kRequestWindow);
    CHECK(std::equal(sent.begin(), sent.end(), ids.begin()));
    CHECK(s.replica->requestsInFlight() == sync::kRequestWindow);
    // A full window: a new outbox entry does not go out.
    s.replica->outboxChanged();
    CHECK(requestIds(sentMessages(*probe)).empty());
    // The first two answered and their change models applied: two more go out, the outbox shrinks.
    deliver(*s.replica, writeResult(ids[0], 6));
    deliver(*s.replica, originChange(s, 6, ids[0], "w0"));
    deliver(*s.replica, writeResult(ids[1], 7));
    deliver(*s.replica, originChange(s, 7, ids[1], "w1"));
    CHECK(s.replica->state() == ReplicaState::Streaming);
    auto more = requestIds(sentMessages(*probe));
    REQUIRE(more.size() == 2);
    CHECK(more[0] == ids[sync::kRequestWindow]);
    CHECK(more[1] == ids[sync::kRequestWindow + 1]);
    CHECK(s.replica->requestsInFlight() == sync::kRequestWindow);
    CHECK(outboxCount(s) == uint64_t(n - 2));
    CHECK(s.get("w0") == "v");
    auto st = s.store->requestState(ids[0]);
    REQUIRE_OK(st);
    CHECK(st->kind == store::RequestState::Committed);
    CHECK(st->seq == 6);
}

TEST_CASE("replica: a new link resends every unanswered request, in order") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    auto ids = queue(s, 5);
    s.replica->outboxChanged();
    REQUIRE(requestIds(sentMessages(*probe)).size() == 5);
    deliver(*s.replica, writeResult(ids[0], 6));
    deliver(*s.replica, originChange(s, 6, ids[0], "w0"));
    (void)sentMessages(*probe);
    s.replica->onClosed(makeError(Errc::Io, "cut"));
    CHECK(s.replica->requestsInFlight() == 0);
    auto next = s.connect();
    (void)sentMessages(*next);
    deliver(*s.replica, welcome(wire::SyncMode::INCREMENTAL, kGen, 6));
    REQUIRE(s.replica->state() == ReplicaState::Streaming);
    auto resent = requestIds(sentMessages(*next));
    CHECK(resent == std::vector<uint64_t>(ids.begin() + 1, ids.end()));
    CHECK(s.replica->requestsInFlight() == 4);
}

TEST_CASE("replica: requests written against another generation are held, not forwarded") {
    SlaveSide s(true);  // takes the master's new generation without the operator
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    auto old = queue(s, 3, "old");
    s.replica->onClosed(makeError(Errc::Io, "cut"));
    // The master's data was replaced: a FULL of generation kGen + 1.
    const uint64_t gen2 = kGen + 1;
    auto next = s.connect();
    (void)sentMessages(*next);
    deliver(*s.replica, welcome(wire::SyncMode::FULL, gen2, 2));
    wire::ChangeModelWriter cw;
    cw.put("t", Bytes("n"), Bytes("1"));
    Bytes full = cw.finishFull(gen2, 2, 0, true, {"t"});
    deliver(*s.replica, std::vector<uint8_t>(full.data, full.data + full.size));
    REQUIRE(s.replica->state() == ReplicaState::Streaming);
    CHECK(requestIds(sentMessages(*next)).empty());
    CHECK(s.replica->requestsInFlight() == 0);
    auto info = s.store->outboxInfo();
    REQUIRE_OK(info);
    CHECK(info->count == 3);
    CHECK(info->held == 3);
    // A request written now (against gen2) goes out; the held ones still do not.
    auto fresh = queue(s, 1, "new");
    s.replica->outboxChanged();
    auto sent = sentMessages(*next);
    auto ids = requestIds(sent);
    REQUIRE(ids.size() == 1);
    CHECK(ids[0] == fresh[0]);
    CHECK(ids[0] > old.back());
    for (const auto& m : sent)
        if (m.type() == wire::Message::WriteRequest)
            CHECK(m.frame()->message_as_WriteRequest()->generation() == gen2);
}

TEST_CASE("replica: a request rejected with seq 0 leaves the outbox and its rejection is recorded") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    auto ids = queue(s, 2);
    s.replica->outboxChanged();
    REQUIRE(requestIds(sentMessages(*probe)).size() == 2);
    deliver(*s.replica, writeResult(ids[0], 0, true, "table 't' is not shared"));
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.replica->requestsInFlight() == 1);
    CHECK(outboxCount(s) == 1);
    auto st = s.store->requestState(ids[0]);
    REQUIRE_OK(st);
    CHECK(st->kind == store::RequestState::Rejected);
    CHECK(st->reason.find("not shared") != std::string::npos);
    auto info = s.store->outboxInfo();
    REQUIRE_OK(info);
    CHECK(info->lastRejection.find("not shared") != std::string::npos);
    CHECK(s.get("w0") == "<none>");
    CHECK(s.replica->status().position == 5);
}

TEST_CASE("replica: a WriteResult for a request never sent closes the link") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    auto ids = queue(s, 1);
    s.replica->outboxChanged();
    REQUIRE(requestIds(sentMessages(*probe)).size() == 1);
    deliver(*s.replica, writeResult(ids[0] + 100, 6));
    CHECK(probe->closed);
    CHECK(s.replica->state() != ReplicaState::Streaming);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::PROTOCOL);
    CHECK(outboxCount(s) == 1);
}

TEST_CASE("master: a failed condition is answered REJECTED with its seq; its log entry carries the reason") {
    MasterSide m(1);  // holds t/k0
    std::shared_ptr<LinkProbe> probe;
    auto s = streaming(m, probe);
    uint64_t head = m.head();
    wire::RequestWriter w;
    w.condition("t", Bytes("k0"), wire::Require::ABSENT, 0);
    w.change("t", wire::Op::PUT, Bytes("k0"), Bytes("mine"));
    Bytes b = w.finish("slave-dev", 3, m.generation(), 1'700'000'000'000);
    deliver(*s, std::vector<uint8_t>(b.data, b.data + b.size));
    auto msgs = sentMessages(*probe);
    auto res = results(msgs);
    REQUIRE(res.size() == 1);
    CHECK(res[0]->status() == wire::WriteStatus::REJECTED);
    CHECK(res[0]->seq() == head + 1);
    std::string reason(wire::textOf(res[0]->reason()));
    CHECK(reason.find("k0") != std::string::npos);
    const wire::ChangeModel* cm = nullptr;
    for (const auto& msg : msgs)
        if (msg.type() == wire::Message::ChangeModel) cm = msg.frame()->message_as_ChangeModel();
    REQUIRE(cm != nullptr);
    REQUIRE(cm->origin() != nullptr);
    CHECK(cm->origin()->status() == wire::WriteStatus::REJECTED);
    CHECK(wire::textOf(cm->origin()->reason()) == reason);
    CHECK((!cm->changes() || cm->changes()->size() == 0));
    auto clients = m.store->clients();
    REQUIRE_OK(clients);
    REQUIRE(clients->size() == 1);
    CHECK((*clients)[0].rejected == 1);
    CHECK((*clients)[0].applied == 0);
}

TEST_CASE("replica: a rejection the master logged settles with its change model") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    auto ids = queue(s, 1);
    s.replica->outboxChanged();
    REQUIRE(requestIds(sentMessages(*probe)).size() == 1);
    deliver(*s.replica, writeResult(ids[0], 6, true, "t/'a' is present"));
    // Not settled yet: the log entry at seq 6 is what settles it, in the transaction applying it.
    CHECK(outboxCount(s) == 1);
    auto meta = s.store->meta();
    REQUIRE_OK(meta);
    wire::ChangeModelWriter w;
    wire::OriginFields o;
    o.deviceId = meta->device;
    o.requestId = ids[0];
    o.status = wire::WriteStatus::REJECTED;
    o.reason = "t/'a' is present";
    Bytes b = w.finishIncremental(kGen, 6, 6, &o);
    deliver(*s.replica, std::vector<uint8_t>(b.data, b.data + b.size));
    CHECK(s.replica->state() == ReplicaState::Streaming);
    CHECK(s.replica->status().position == 6);
    CHECK(outboxCount(s) == 0);
    auto st = s.store->requestState(ids[0]);
    REQUIRE_OK(st);
    CHECK(st->kind == store::RequestState::Rejected);
    CHECK(st->reason == "t/'a' is present");
    CHECK(s.get("w0") == "<none>");
}

// ---- bytes in flight (a peer's requests are bounded in bytes, not only in count) ----------------

TEST_CASE("master: more than 2*kRequestWindowBytes of unanswered requests close the link") {
    MasterSide m(1);
    HoldingHost host(m.host);
    auto probe = std::make_shared<LinkProbe>();
    sync::MasterSession s(host, std::make_unique<ScriptedLink>(probe), 1);
    REQUIRE_OK(s.start());
    deliver(s, wire::buildHello(m.hello(true, m.generation(), m.head())));
    REQUIRE(s.state() == SessionState::Streaming);
    const std::string value(12u << 20, 'v');                            // under the 16 MiB frame limit
    const uint64_t fit = 2 * sync::kRequestWindowBytes / value.size();  // 5 fit in 64 MiB
    for (uint64_t id = 1; id <= fit; ++id) deliver(s, request(id, m.generation(), "x", value.c_str()));
    CHECK_FALSE(s.closed());
    CHECK(host.held.size() == fit);
    deliver(s, request(fit + 1, m.generation(), "x", value.c_str()));
    CHECK(s.closed());
    CHECK(host.held.size() == fit);
    CHECK(lastError(sentMessages(*probe)) == wire::ErrorCode::PROTOCOL);
}

TEST_CASE("master: answered requests free their bytes; one request alone may be larger") {
    MasterSide m(1);
    std::shared_ptr<LinkProbe> probe;
    auto s = streaming(m, probe);
    const std::string value(12u << 20, 'v');
    // Applied and answered at once (TestHost): ten times the bytes of the bound go through.
    for (uint64_t id = 1; id <= 10; ++id) deliver(*s, request(id, m.generation(), "x", value.c_str()));
    CHECK_FALSE(s->closed());
    CHECK(results(sentMessages(*probe)).size() == 10);
}

TEST_CASE("replica: at most kRequestWindowBytes in flight, or one request alone") {
    SlaveSide s;
    std::shared_ptr<LinkProbe> probe;
    streamingAt5(s, probe);
    const std::string value(12u << 20, 'v');  // two fit in 32 MiB, three do not
    std::vector<uint64_t> ids;
    for (int i = 0; i < 3; ++i) {
        auto w = s.store->beginWrite();
        REQUIRE_OK(w);
        std::string k = "big" + std::to_string(i);
        REQUIRE_OK(w->put("t", Bytes(k), Bytes(value)));
        auto c = w->commitWrite();
        REQUIRE_OK(c);
        ids.push_back(c->request);
    }
    s.replica->outboxChanged();
    auto sent = requestIds(sentMessages(*probe));
    CHECK(sent == std::vector<uint64_t>{ids[0], ids[1]});
    CHECK(s.replica->requestBytesInFlight() <= sync::kRequestWindowBytes);
    // Rejected (seq 0) answers free the window: the third goes, alone.
    deliver(*s.replica, writeResult(ids[0], 0, true, "test"));
    deliver(*s.replica, writeResult(ids[1], 0, true, "test"));
    CHECK(requestIds(sentMessages(*probe)) == std::vector<uint64_t>{ids[2]});
    CHECK(s.replica->requestsInFlight() == 1);
    CHECK(s.replica->requestBytesInFlight() > value.size());
}
