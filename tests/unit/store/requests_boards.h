// The boards of the slave-write tests (test_requests*.cc): a master directory and slave
// directories synced to it, the test playing the daemon by hand (read the outbox, apply on the
// master, replicate the log back), helpers to read counters and records, and hand-built
// (forged) WriteRequests.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fixture.h"
#include "store/requests.h"
#include "wire/bounds.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::test {

inline const std::vector<std::string> kShared = {"orders", "stock"};

inline std::string counter(int64_t v) {
    uint8_t be[8];
    store::encodeCounter(be, v);
    return std::string(reinterpret_cast<const char*>(be), 8);
}

inline int64_t counterOf(const std::optional<std::string>& v) {
    REQUIRE(v.has_value());
    REQUIRE(v->size() == 8);
    return static_cast<int64_t>(getBe64(reinterpret_cast<const uint8_t*>(v->data())));
}

inline std::optional<std::string> get(store::Store& s, std::string_view table, std::string_view key) {
    auto r = s.beginRead();
    REQUIRE_OK(r);
    auto v = r->get(table, Bytes(key));
    if (!v.ok() && v.error().code == Errc::NotFound) return std::nullopt;
    REQUIRE_OK(v);
    if (!*v) return std::nullopt;
    return (*v)->str();
}

inline uint64_t entries(store::Store& s, std::string_view table) {
    auto r = s.beginRead();
    REQUIRE_OK(r);
    auto n = r->entries(table);
    if (!n.ok() && n.error().code == Errc::NotFound) return 0;
    REQUIRE_OK(n);
    return *n;
}

// Entries of possync.results belonging to `device`.
inline uint64_t resultsOf(store::Store& s, const std::string& device) {
    auto txn = lmdb::Txn::begin(s.env(), false);
    REQUIRE_OK(txn);
    auto cur = lmdb::Cursor::open(*txn, s.requestDbs().results);
    REQUIRE_OK(cur);
    std::string prefix = device + '\0';
    uint64_t n = 0;
    Bytes k, v;
    for (auto r = cur->seek(Bytes(prefix), k, v);; r = cur->next(k, v)) {
        REQUIRE_OK(r);
        if (!*r || k.size < prefix.size() || std::memcmp(k.data, prefix.data(), prefix.size()) != 0) break;
        ++n;
    }
    (void)txn->commit();
    return n;
}

inline store::ClientRecord clientOf(store::Store& s, const std::string& device) {
    auto all = s.clients();
    REQUIRE_OK(all);
    for (auto& c : *all)
        if (c.device == device) return c;
    FAIL("no possync.clients record for " << device);
    return {};
}

// A master directory watching kShared and `slaves` slave directories synced to it (a FULL of
// the master's empty data at its head seq: watched tables and position come with it).
struct Boards {
    TempDir dm;
    std::vector<std::unique_ptr<TempDir>> ds;
    std::unique_ptr<store::Store> master;
    std::vector<std::unique_ptr<store::Store>> slaves;

    std::vector<std::string> shared;

    explicit Boards(int nSlaves = 1, std::vector<std::string> tables = kShared) : shared(std::move(tables)) {
        store::StoreOptions mo;
        mo.deviceId = "master";
        master = openStore(dm.path(), mo);
        REQUIRE_OK(master->setWatchedTables(shared));
        for (int i = 0; i < nSlaves; ++i) {
            ds.push_back(std::make_unique<TempDir>());
            store::StoreOptions so;
            so.deviceId = "till" + std::to_string(i + 1);
            slaves.push_back(openStore(ds.back()->path(), so));
            REQUIRE_OK(slaves.back()->setRole(store::Role::Slave));
            fullSync(i);
        }
    }
    store::Store& slave(int i = 0) { return *slaves[size_t(i)]; }
    std::string slaveDir(int i = 0) const { return ds[size_t(i)]->path(); }

    void fullSync(int i) {
        auto m = master->meta();
        REQUIRE_OK(m);
        auto a = slave(i).beginApply();
        REQUIRE_OK(a);
        REQUIRE_OK(a->beginFull(shared));
        REQUIRE_OK(a->setPosition(m->generation, m->seq));
        REQUIRE_OK(a->commit());
    }

    // The slave's outbox: (id, frame bytes), in id order.
    std::vector<std::pair<uint64_t, std::string>> outbox(int i = 0) {
        std::vector<std::pair<uint64_t, std::string>> out;
        REQUIRE_OK(slave(i).readOutbox(0, [&](uint64_t id, Bytes f) {
            out.emplace_back(id, f.str());
            return true;
        }));
        return out;
    }

    // The daemon's forwarding: every queued request of slave i to the master, in order. A
    // request rejected without a log entry (seq 0) is settled on the slave as the sync layer
    // does; the others come back through replicate().
    std::vector<store::RequestOutcome> forward(int i = 0) {
        std::vector<store::RequestOutcome> outcomes;
        for (auto& [id, frame] : outbox(i)) {
            auto f = wire::verifyFrame(Bytes(frame));
            REQUIRE_OK(f);
            const wire::WriteRequest* req = wire::asWriteRequest(*f);
            REQUIRE(req != nullptr);
            CHECK(req->request_id() == id);
            auto o = master->applyRequest(req);
            REQUIRE_OK(o);
            outcomes.push_back(*o);
            if (o->result.seq == 0) {
                auto a = slave(i).beginApply();
                REQUIRE_OK(a);
                REQUIRE_OK(a->settleOwnRequest(o->result));
                REQUIRE_OK(a->commit());
            }
        }
        return outcomes;
    }

    // Every master log entry after the slave's position, one ApplyTxn each (the sync layer's
    // INCREMENTAL stream).
    void replicate(int i = 0) {
        uint64_t from = slave(i).meta()->seq + 1;
        std::vector<std::pair<uint64_t, std::string>> frames;
        REQUIRE_OK(master->readLog(from, 1000000, SIZE_MAX, [&](uint64_t seq, Bytes f) {
            frames.emplace_back(seq, f.str());
            return true;
        }));
        uint64_t gen = master->meta()->generation;
        for (auto& [seq, f] : frames) {
            auto v = wire::verifyFrame(Bytes(f));
            REQUIRE_OK(v);
            auto a = slave(i).beginApply();
            REQUIRE_OK(a);
            REQUIRE_OK(a->apply(wire::asChangeModel(*v)));
            REQUIRE_OK(a->setPosition(gen, seq));
            REQUIRE_OK(a->commit());
        }
    }
    void replicateAll() {
        for (int i = 0; i < int(slaves.size()); ++i) replicate(i);
    }
};

// One write transaction on `s`, committed; returns what the commit said.
inline store::CommitInfo write(store::Store& s, const std::function<void(store::WriteTxn&)>& body) {
    auto w = s.beginWrite();
    REQUIRE_OK(w);
    body(*w);
    auto c = w->commitWrite();
    REQUIRE_OK(c);
    return *c;
}

// A WriteRequest built by hand (what a rogue or buggy slave could send).
struct Forged {
    wire::RequestWriter writer;
    std::string frame;
    const wire::WriteRequest* finish(std::string_view device, uint64_t id, uint64_t generation) {
        frame = writer.finish(device, id, generation, 1).str();
        auto f = wire::verifyFrame(Bytes(frame));
        REQUIRE_OK(f);
        return wire::asWriteRequest(*f);
    }
};

}  // namespace possync::test
