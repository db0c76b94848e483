// The sync layer played by hand at the store layer, for tests that need a master and its slaves
// without a daemon or a link: boards in scratch directories, the master's log entries applied
// as the replica applies them (INCREMENTAL), and a FULL through the master's real Snapshot.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "fixture.h"
#include "sync/snapshot.h"
#include "wire/change_model.h"
#include "wire/frame.h"
#include "wire/messages.h"

namespace possync::test {

// A board's store in a scratch directory: a master, or a slave (Role::Slave).
struct Board {
    TempDir dir;
    std::unique_ptr<store::Store> s;
    explicit Board(const std::string& device, bool slave) {
        store::StoreOptions o;
        o.deviceId = device;
        s = openStore(dir.path(), o);
        if (slave) REQUIRE_OK(s->setRole(store::Role::Slave));
    }
    store::Meta meta() {
        auto m = s->meta();
        REQUIRE_OK(m);
        return *m;
    }
};

// One put, committed.
inline void put(store::Store& s, const std::string& table, const std::string& k, const std::string& v) {
    auto w = s.beginWrite();
    REQUIRE_OK(w);
    REQUIRE_OK(w->put(table, Bytes(k), Bytes(v)));
    REQUIRE_OK(w->commitWrite());
}

// The log entries from `from` on: (seq, frame bytes).
inline std::vector<std::pair<uint64_t, std::string>> logOf(store::Store& s, uint64_t from = 0) {
    std::vector<std::pair<uint64_t, std::string>> out;
    REQUIRE_OK(s.readLog(from, 1000000, SIZE_MAX, [&](uint64_t seq, Bytes f) {
        out.emplace_back(seq, f.str());
        return true;
    }));
    return out;
}

// The INCREMENTAL stream: the master's entries after the slave's position, one ApplyTxn, the
// received frame bytes given (as the replica does).
inline void replicate(store::Store& master, store::Store& slave) {
    auto frames = logOf(master, slave.meta()->seq + 1);
    if (frames.empty()) return;
    auto a = slave.beginApply();
    REQUIRE_OK(a);
    for (auto& [seq, f] : frames) {
        auto v = wire::verifyFrame(Bytes(f));
        REQUIRE_OK(v);
        REQUIRE_OK(a->apply(wire::asChangeModel(*v), Bytes(f)));
    }
    REQUIRE_OK(a->setPosition(master.meta()->generation, frames.back().first));
    REQUIRE_OK(a->commit());
}

// A FULL sync through the master's real Snapshot (what MasterSession sends) in small chunks (a
// few records each, so that tables span several), applied as the replica applies it. Returns the
// records chunk 0 announced.
inline uint64_t fullSync(store::Store& master, store::Store& slave, size_t chunkBytes = 200) {
    auto m = master.meta();
    REQUIRE_OK(m);
    sync::Snapshot snap(master, m->generation, m->watched, chunkBytes);
    auto a = slave.beginFullApply();
    REQUIRE_OK(a);
    uint64_t firstSeq = 0, announced = 0;
    std::vector<sync::SharedFrame> held;  // chunks stay cached while held
    for (uint32_t n = 0; n < 10000; ++n) {
        auto c = snap.chunk(n);
        REQUIRE_OK(c);
        held.push_back(c->frame);
        Bytes payload(c->frame->data() + wire::kFrameHeaderBytes, c->frame->size() - wire::kFrameHeaderBytes);
        auto f = wire::verifyFrame(payload);
        REQUIRE_OK(f);
        const wire::ChangeModel* cm = wire::asChangeModel(*f);
        REQUIRE(cm != nullptr);
        if (n == 0) {
            std::vector<std::string> tables;
            for (auto* t : *cm->tables()) tables.emplace_back(wire::textOf(t));
            REQUIRE_OK(a->beginFull(tables));
            firstSeq = cm->snapshot_seq();
            announced = cm->snapshot_records().value_or(0);
        }
        REQUIRE_OK(a->applyFullChunk(cm));
        if (c->last) break;
    }
    REQUIRE_OK(a->setPosition(m->generation, firstSeq));
    REQUIRE_OK(a->commit());
    return announced;
}

}  // namespace possync::test
