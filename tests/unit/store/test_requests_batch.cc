// Group commit (Store::applyRequests): several forwarded requests in ONE LMDB transaction, each
// exactly as Store::applyRequest applies it alone. What must hold: a batch leaves the same data,
// log entries (seqs, origins, changes) and possync.clients/possync.results as the same requests
// applied one by one; a later request sees the earlier ones' effects (the last item claimed
// twice in one batch: the first wins); duplicates inside and across batches get the stored
// outcome; a rejected request in the middle applies nothing of its own (also when it failed
// after writing part of itself) and the others go on; an error that is not a rejection (map
// full) commits nothing of the batch.
#include <doctest/doctest.h>

#include <climits>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "fixture.h"
#include "store/requests.h"
#include "wire/change_model.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::test;

namespace {

const std::vector<std::string> kShared = {"orders", "stock"};

std::string counter(int64_t v) {
    uint8_t be[8];
    store::encodeCounter(be, v);
    return std::string(reinterpret_cast<const char*>(be), 8);
}

std::unique_ptr<store::Store> openMaster(const TempDir& dir, size_t mapSize = 0) {
    store::StoreOptions o;
    o.deviceId = "master";
    o.mapSize = mapSize;
    auto s = openStore(dir.path(), o);
    REQUIRE_OK(s->setWatchedTables(kShared));
    return s;
}

std::optional<std::string> get(store::Store& s, std::string_view table, std::string_view key) {
    auto r = s.beginRead();
    REQUIRE_OK(r);
    auto v = r->get(table, Bytes(key));
    if (!v.ok() && v.error().code == Errc::NotFound) return std::nullopt;
    REQUIRE_OK(v);
    if (!*v) return std::nullopt;
    return (*v)->str();
}

void put(store::Store& s, std::string_view table, std::string_view key, std::string_view value) {
    auto w = s.beginWrite();
    REQUIRE_OK(w);
    REQUIRE_OK(w->put(table, Bytes(key), Bytes(value)));
    REQUIRE_OK(w->commit());
}

// One request as a slave sends it; `body` adds its conditions and changes.
struct Req {
    std::string device;
    uint64_t id = 0;
    std::function<void(wire::RequestWriter&)> body;
};

// The verified frames of `reqs`, written against `generation`, and pointers to their requests.
struct Frames {
    std::vector<std::string> bytes;
    std::vector<const wire::WriteRequest*> reqs;

    Frames(const std::vector<Req>& list, uint64_t generation) {
        for (const auto& r : list) {
            wire::RequestWriter w;
            r.body(w);
            bytes.push_back(w.finish(r.device, r.id, generation, 1).str());
        }
        for (const auto& b : bytes) {
            auto f = wire::verifyFrame(Bytes(b));
            REQUIRE_OK(f);
            reqs.push_back(wire::asWriteRequest(*f));
            REQUIRE(reqs.back() != nullptr);
        }
    }
    std::span<const wire::WriteRequest* const> span() const { return reqs; }
};

std::vector<store::RequestOutcome> batch(store::Store& s, const std::vector<Req>& list) {
    Frames f(list, s.meta()->generation);
    auto r = s.applyRequests(f.span());
    REQUIRE_OK(r);
    REQUIRE(r->size() == list.size());
    return *r;
}

std::vector<store::RequestOutcome> oneByOne(store::Store& s, const std::vector<Req>& list) {
    Frames f(list, s.meta()->generation);
    std::vector<store::RequestOutcome> out;
    for (const auto* req : f.reqs) {
        auto r = s.applyRequest(req);
        REQUIRE_OK(r);
        out.push_back(*r);
    }
    return out;
}

// A log entry as the boards see it, without the generation (two masters differ in it).
struct Entry {
    uint64_t seq = 0;
    std::string device, reason;
    uint64_t request = 0;
    bool rejected = false, hasOrigin = false;
    std::vector<std::string> changes;  // "op table key value"
    bool operator==(const Entry&) const = default;
};

std::vector<Entry> logOf(store::Store& s) {
    std::vector<std::pair<uint64_t, std::string>> frames;
    REQUIRE_OK(s.readLog(1, 1000000, SIZE_MAX, [&](uint64_t seq, Bytes frame) {
        frames.emplace_back(seq, frame.str());
        return true;
    }));
    std::vector<Entry> out;
    for (const auto& [seq, frame] : frames) {
        auto f = wire::verifyFrame(Bytes(frame));
        REQUIRE_OK(f);
        const wire::ChangeModel* m = wire::asChangeModel(*f);
        REQUIRE(m != nullptr);
        Entry e;
        e.seq = seq;
        CHECK(m->first_seq() == seq);
        if (const wire::Origin* o = m->origin()) {
            e.hasOrigin = true;
            e.device = std::string(wire::textOf(o->device_id()));
            e.request = o->request_id();
            e.rejected = o->status() == wire::WriteStatus::REJECTED;
            e.reason = std::string(wire::textOf(o->reason()));
        }
        if (m->changes())
            for (const wire::Change* c : *m->changes())
                e.changes.push_back(std::to_string(int(c->op())) + " " + std::string(wire::tableOf(c)) + " " +
                                    wire::keyOf(c).str() + " " + wire::valueOf(c).str());
        out.push_back(std::move(e));
    }
    return out;
}

std::optional<store::RequestResult> storedResult(store::Store& s, const std::string& device, uint64_t id) {
    auto txn = lmdb::Txn::begin(s.env(), false);
    REQUIRE_OK(txn);
    auto r = store::findResult(*txn, s.requestDbs(), device, id);
    REQUIRE_OK(r);
    (void)txn->commit();
    return *r;
}

void checkSameOutcome(const store::RequestOutcome& a, const store::RequestOutcome& b) {
    CHECK(a.result.requestId == b.result.requestId);
    CHECK(a.result.rejected == b.result.rejected);
    CHECK(a.result.seq == b.result.seq);
    CHECK(a.result.reason == b.result.reason);
    CHECK(a.duplicate == b.duplicate);
}

Req putReq(std::string device, uint64_t id, std::string table, std::string key, std::string value) {
    return Req{std::move(device), id,
               [=](wire::RequestWriter& w) { w.change(table, wire::Op::PUT, Bytes(key), Bytes(value)); }};
}

// The last item: stock/cola must still hold `expect`; take one and record the order.
Req claimReq(std::string device, uint64_t id, int64_t expect, std::string order) {
    return Req{std::move(device), id, [=](wire::RequestWriter& w) {
                   w.condition("stock", Bytes("cola"), wire::Require::VALUE_HASH,
                               store::valueHash(Bytes(counter(expect))));
                   w.change("stock", wire::Op::ADD, Bytes("cola"), Bytes(counter(-1)));
                   w.change("orders", wire::Op::PUT, Bytes(order), Bytes("cola"));
               }};
}

}  // namespace

TEST_SUITE("store.requests.batch") {
    TEST_CASE("a batch leaves what the same requests applied one by one leave") {
        std::vector<Req> list = {
            putReq("till1", 1, "orders", "o1", "burger"),
            Req{"till2", 1,
                [](wire::RequestWriter& w) {
                    w.change("stock", wire::Op::ADD, Bytes("cola"), Bytes(counter(5)));
                }},
            Req{"till1", 2,
                [](wire::RequestWriter& w) {
                    w.change("orders", wire::Op::DEL, Bytes("o1"), {});
                    w.change("orders", wire::Op::PUT, Bytes("o2"), Bytes("fries"));
                }},
            // Sees the request just before it: o2 exists now.
            Req{"till2", 2,
                [](wire::RequestWriter& w) {
                    w.condition("orders", Bytes("o2"), wire::Require::ABSENT, 0);
                    w.change("orders", wire::Op::PUT, Bytes("o2"), Bytes("tea"));
                }},
            Req{"till1", 3,
                [](wire::RequestWriter& w) {
                    w.condition("orders", Bytes("o2"), wire::Require::PRESENT, 0);
                    w.change("stock", wire::Op::ADD, Bytes("cola"), Bytes(counter(-2)));
                }},
            putReq("till2", 3, "drafts", "d1", "x"),  // not shared: refused, seq 0
            putReq("till3", 1, "orders", "o3", "shake"),
        };
        TempDir da, db;
        auto a = openMaster(da);
        auto b = openMaster(db);
        put(*a, "orders", "o0", "base");
        put(*b, "orders", "o0", "base");
        const uint64_t head = a->meta()->seq;
        REQUIRE(b->meta()->seq == head);

        auto seqOut = oneByOne(*a, list);
        auto batchOut = batch(*b, list);
        REQUIRE(seqOut.size() == batchOut.size());
        for (size_t i = 0; i < seqOut.size(); ++i) {
            CAPTURE(i);
            checkSameOutcome(seqOut[i], batchOut[i]);
        }
        // Each request its own entry, in order, one seq each (the refused one none).
        CHECK(batchOut[0].result.seq == head + 1);
        CHECK(batchOut[1].result.seq == head + 2);
        CHECK(batchOut[2].result.seq == head + 3);
        CHECK(batchOut[3].result.seq == head + 4);
        CHECK(batchOut[3].result.rejected);
        CHECK(batchOut[3].result.reason.find("orders/'o2' exists") != std::string::npos);
        CHECK(batchOut[4].result.seq == head + 5);
        CHECK_FALSE(batchOut[4].result.rejected);
        CHECK(batchOut[5].result.seq == 0);
        CHECK(batchOut[5].result.rejected);
        CHECK(batchOut[6].result.seq == head + 6);
        CHECK(b->meta()->seq == head + 6);

        CHECK(logOf(*a) == logOf(*b));
        auto entries = logOf(*b);
        REQUIRE(entries.size() == head + 6);
        CHECK(entries[head + 3].device == "till2");
        CHECK(entries[head + 3].request == 2);
        CHECK(entries[head + 3].rejected);
        CHECK(entries[head + 3].changes.empty());
        CHECK(entries[head + 2].changes.size() == 2);

        CHECK(get(*b, "orders", "o1") == std::nullopt);
        CHECK(get(*b, "orders", "o2") == "fries");
        CHECK(get(*b, "orders", "o3") == "shake");
        CHECK(get(*b, "stock", "cola") == counter(3));
        CHECK(get(*b, "drafts", "d1") == std::nullopt);
        CHECK(a->watchedDigest()->digest == b->watchedDigest()->digest);

        auto ca = a->clients(), cb = b->clients();
        REQUIRE_OK(ca);
        REQUIRE_OK(cb);
        REQUIRE(ca->size() == 3);
        REQUIRE(cb->size() == ca->size());
        for (size_t i = 0; i < ca->size(); ++i) {
            CHECK((*ca)[i].device == (*cb)[i].device);
            CHECK((*ca)[i].lastRequest == (*cb)[i].lastRequest);
            CHECK((*ca)[i].lastSeq == (*cb)[i].lastSeq);
            CHECK((*ca)[i].applied == (*cb)[i].applied);
            CHECK((*ca)[i].rejected == (*cb)[i].rejected);
        }
        for (const auto& r : list) {
            CAPTURE(r.device);
            CAPTURE(r.id);
            auto ra = storedResult(*a, r.device, r.id), rb = storedResult(*b, r.device, r.id);
            REQUIRE(ra.has_value() == rb.has_value());
            if (!ra) continue;
            CHECK(ra->rejected == rb->rejected);
            CHECK(ra->seq == rb->seq);
            CHECK(ra->reason == rb->reason);
        }
        // The refused request left no record (as applyRequest alone); the rejected one did.
        CHECK_FALSE(storedResult(*b, "till2", 3));
        CHECK(storedResult(*b, "till2", 2)->rejected);
    }

    TEST_CASE("the last item claimed twice in one batch: the first wins, the second is rejected") {
        TempDir d;
        auto m = openMaster(d);
        put(*m, "stock", "cola", counter(1));
        const uint64_t head = m->meta()->seq;
        auto out = batch(*m, {claimReq("till1", 1, 1, "o1"), claimReq("till2", 1, 1, "o2")});
        CHECK_FALSE(out[0].result.rejected);
        CHECK(out[0].result.seq == head + 1);
        CHECK(out[1].result.rejected);
        CHECK(out[1].result.seq == head + 2);
        CHECK(out[1].result.reason.find("stock/'cola'") != std::string::npos);
        CHECK(get(*m, "stock", "cola") == counter(0));
        CHECK(get(*m, "orders", "o1") == "cola");
        CHECK(get(*m, "orders", "o2") == std::nullopt);
        auto log = logOf(*m);
        REQUIRE(log.size() == head + 2);
        CHECK(log[head].changes.size() == 2);
        CHECK_FALSE(log[head].rejected);
        CHECK(log[head + 1].rejected);
        CHECK(log[head + 1].device == "till2");
        CHECK(log[head + 1].changes.empty());
        CHECK(log[head + 1].reason == out[1].result.reason);
        CHECK(storedResult(*m, "till2", 1)->rejected);
    }

    TEST_CASE("duplicates inside a batch and across batches get the stored outcome, applied once") {
        TempDir d;
        auto m = openMaster(d);
        const uint64_t head = m->meta()->seq;
        auto add = [](uint64_t id) {
            return Req{"till1", id, [](wire::RequestWriter& w) {
                           w.change("stock", wire::Op::ADD, Bytes("cola"), Bytes(counter(1)));
                       }};
        };
        auto first = batch(*m, {add(1), add(1), add(2)});
        CHECK_FALSE(first[0].duplicate);
        CHECK(first[0].result.seq == head + 1);
        CHECK(first[1].duplicate);
        CHECK(first[1].result.seq == head + 1);
        CHECK_FALSE(first[1].result.rejected);
        CHECK(first[2].result.seq == head + 2);
        CHECK(get(*m, "stock", "cola") == counter(2));

        auto second = batch(*m, {add(2), add(1), add(3)});
        CHECK(second[0].duplicate);
        CHECK(second[0].result.seq == head + 2);
        CHECK(second[1].duplicate);
        CHECK(second[1].result.seq == head + 1);
        CHECK_FALSE(second[2].duplicate);
        CHECK(second[2].result.seq == head + 3);
        CHECK(get(*m, "stock", "cola") == counter(3));
        CHECK(m->meta()->seq == head + 3);
        auto c = m->clients();
        REQUIRE_OK(c);
        REQUIRE(c->size() == 1);
        CHECK((*c)[0].lastRequest == 3);
        CHECK((*c)[0].applied == 3);
        CHECK((*c)[0].rejected == 0);

        // A batch of duplicates only commits nothing.
        auto third = batch(*m, {add(3), add(1)});
        CHECK(third[0].duplicate);
        CHECK(third[1].duplicate);
        CHECK(m->meta()->seq == head + 3);
    }

    TEST_CASE("a request rejected after writing part of itself applies nothing; the others go on") {
        TempDir d;
        auto m = openMaster(d);
        put(*m, "stock", "bad", "abc");  // not an 8-byte counter: an ADD on it fails
        put(*m, "stock", "max", counter(INT64_MAX));
        const uint64_t head = m->meta()->seq;
        auto addTo = [](std::string device, uint64_t id, std::string order, std::string key) {
            return Req{std::move(device), id, [=](wire::RequestWriter& w) {
                           w.change("orders", wire::Op::PUT, Bytes(order), Bytes("x"));
                           w.change("stock", wire::Op::ADD, Bytes(key), Bytes(counter(1)));
                       }};
        };
        auto out = batch(*m, {putReq("till1", 1, "orders", "a", "1"), addTo("till2", 1, "b", "bad"),
                              putReq("till1", 2, "orders", "c", "3"), addTo("till2", 2, "e", "max"),
                              addTo("till3", 1, "f", "cola")});
        CHECK_FALSE(out[0].result.rejected);
        CHECK(out[1].result.rejected);
        CHECK(out[1].result.reason.find("not an 8-byte") != std::string::npos);
        CHECK_FALSE(out[2].result.rejected);
        CHECK(out[3].result.rejected);
        CHECK(out[3].result.reason.find("overflows") != std::string::npos);
        CHECK_FALSE(out[4].result.rejected);
        for (size_t i = 0; i < out.size(); ++i) {
            CAPTURE(i);
            CHECK(out[i].result.seq == head + 1 + i);
        }
        CHECK(get(*m, "orders", "a") == "1");
        CHECK(get(*m, "orders", "b") == std::nullopt);  // its PUT went with its rejection
        CHECK(get(*m, "orders", "c") == "3");
        CHECK(get(*m, "orders", "e") == std::nullopt);
        CHECK(get(*m, "orders", "f") == "x");
        CHECK(get(*m, "stock", "bad") == "abc");
        CHECK(get(*m, "stock", "max") == counter(INT64_MAX));
        CHECK(get(*m, "stock", "cola") == counter(1));
        auto log = logOf(*m);
        REQUIRE(log.size() == head + 5);
        CHECK(log[head + 1].rejected);
        CHECK(log[head + 1].changes.empty());
        CHECK(log[head + 1].reason == out[1].result.reason);
        CHECK(log[head + 3].changes.empty());
        CHECK(storedResult(*m, "till2", 1)->rejected);
        CHECK(storedResult(*m, "till2", 2)->seq == head + 4);
        auto c = m->clients();
        REQUIRE_OK(c);
        REQUIRE(c->size() == 3);
        CHECK((*c)[1].device == "till2");
        CHECK((*c)[1].rejected == 2);
        CHECK((*c)[1].applied == 0);
    }

    TEST_CASE("an error that is not a rejection (map full) commits nothing of the batch") {
        TempDir d;
        auto m = openMaster(d, size_t(256) << 10);
        const uint64_t head = m->meta()->seq;
        const std::string big(16 << 10, 'v');
        std::vector<Req> list;
        for (uint64_t i = 1; i <= 32; ++i)
            list.push_back(putReq("till1", i, "orders", "o" + std::to_string(i), big));
        Frames f(list, m->meta()->generation);
        auto r = m->applyRequests(f.span());
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Errc::MapFull);
        CHECK(m->meta()->seq == head);
        CHECK(get(*m, "orders", "o1") == std::nullopt);
        auto c = m->clients();
        REQUIRE_OK(c);
        CHECK(c->empty());
        CHECK_FALSE(storedResult(*m, "till1", 1));

        // The same requests fit one at a time (each resent on its own): ids continue, exactly once.
        auto one = m->applyRequests(std::span<const wire::WriteRequest* const>(f.reqs.data(), 1));
        REQUIRE_OK(one);
        CHECK(one->front().result.seq == head + 1);
        CHECK(get(*m, "orders", "o1") == big);
    }
}
