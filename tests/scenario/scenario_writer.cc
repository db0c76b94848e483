// scenario_writer: writes and checks test data in a board's data directory through the store API,
// for the scenario tests (tests/scenario/*.py). Thousands of transactions per second, where
// spawning `possync put` per change would take minutes.
//
//   scenario_writer mixed --data DIR --ops N --seed S --tables T1,T2,... [--pause-ms P --every K]
//       N operations (PUT about 70 %, DEL about 28 % of keys that may or may not exist, CLEAR
//       about 1 in 2,000) on random binary keys of the tables, in transactions of varied size
//       (1 to 1,000 operations). The same seed writes the same operations. Prints one summary line.
//       --pause-ms P --every K (both commands): sleep P ms after every K commits.
//   scenario_writer counter --data DIR --count N [--pause-ms P --every K]
//       N transactions continuing table `ctr` from its current counter c: transaction i = c+1...
//       puts counter = i, rec/i = i, tail/i and deletes tail/(i-1).
//   scenario_writer soak --data DIR --seconds S --seed X --tables T1,T2,... [--pause-ms P]
//       The crash soak's writer (test_soak.py): for S seconds, transactions of one kind each: a
//       single put, a single delete, a clear of one table, or 1 to 10,000 mixed puts and deletes
//       (mostly small, a few large), every one also doing the `counter` step on `ctr` (so the
//       counter counts transactions and check-counter finds a lost or repeated one). Sleeps P ms
//       (default 0) between transactions. Ends with one line: "soak: txns=N counter=C ..."; C is
//       the last counter value it saw committed.
//   scenario_writer check-counter --data DIR
//       Read only: checks `ctr` is a state some prefix of those transactions left: rec/1..rec/c
//       exactly, with their values, and tail/c alone. A lost transaction leaves a gap; a replayed
//       old one leaves a stale tail key or a counter that disagrees with the records.
//       Prints "counter=C records=R position=GEN:SEQ" and exits 0, or one line naming the problem and
//       exits 1.
//   scenario_writer observe --data DIR --tables T1,T2,...
//       Read only, in ONE read transaction: the position and, per table, its entry count and a
//       hash of every key and value ("T=absent" for a missing table), on one line. A reader
//       polling this sees exactly what a POS application reading the board would see.
//   scenario_writer hold --data DIR --table T --hold-ms H [--before N]
//       A POS application that keeps LMDB's writer lock: commits N (default 20) one-put
//       transactions to T (keys before/0..), then opens a write transaction, puts held=1, prints
//       "holding" and keeps the writer lock until its stdin gives a line or ends, or H ms passed,
//       prints "committing", commits and prints "released seq=S". Every line is flushed at once
//       (a test reads them as they come).
//   scenario_writer corrupt --data DIR --table T --key K --value V
//       Damage, not a write: on a (stopped) slave's directory, puts K=V into table T through the
//       slave's apply path without a master and without moving the position: what a change
//       forged or corrupted on the link leaves behind (the digest follows the damaged data).
//   scenario_writer make-slave --data DIR --master MDIR
//       Without daemons: makes DIR (created when missing) a synced slave of the master directory
//       MDIR: its role, MDIR's watched tables, generation and seq (no data is copied). Writes on
//       DIR to those tables then queue requests (DESIGN.md §9), as on a real slave.
//   scenario_writer forward --data DIR --master MDIR
//       Without daemons, what the link does for the slave DIR's outbox, in order: the master MDIR
//       applies each request (Store::applyRequest: exactly once, conditions, ADD) and the outcome
//       settles it on DIR (ApplyTxn::settleOwnRequest; no change model is applied there). One line
//       per request: "request N: committed seq S" or "request N: rejected: REASON".
//   scenario_writer orders ... / check-orders ...: see scenario_orders.cc.
#include "scenario_writer.h"

#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"

#include "store/requests.h"
#include "store/store.h"
#include "wire/change_model.h"
#include "wire/messages.h"

namespace possync::scenario {

int fail(const std::string& what) {
    fprintf(stderr, "scenario_writer: %s\n", what.c_str());
    return 1;
}

std::optional<uint64_t> number(const Args& a, const std::string& name, std::optional<uint64_t> fallback) {
    auto it = a.options.find(name);
    if (it == a.options.end()) return fallback;
    return parseU64(it->second);
}

namespace {

constexpr std::string_view kCounterTable = "ctr";
constexpr uint64_t kKeysPerTable = 600;

// splitmix64: a small deterministic generator (the same seed writes the same operations).
class Rng final {
public:
    explicit Rng(uint64_t seed) : state_(seed) {}
    uint64_t next() {
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t below(uint64_t n) { return next() % n; }

private:
    uint64_t state_;
};

std::optional<Args> parseArgs(int argc, char** argv) {
    if (argc < 2) return std::nullopt;
    Args a;
    a.command = argv[1];
    for (int i = 2; i < argc; i += 2) {
        if (std::strncmp(argv[i], "--", 2) != 0 || i + 1 >= argc) return std::nullopt;
        a.options[argv[i] + 2] = argv[i + 1];
    }
    return a;
}

// Key k of a table: 2 to 10 binary bytes (zero bytes included), distinct for each k < 65536:
// k big-endian, then some scrambled bytes.
std::string mixedKey(uint64_t k) {
    uint8_t b[10];
    b[0] = static_cast<uint8_t>(k >> 8);
    b[1] = static_cast<uint8_t>(k);
    putBe64(b + 2, k * 0x9e3779b97f4a7c15ull);
    return std::string(reinterpret_cast<const char*>(b), 2 + k % 9);
}

int runMixed(store::Store& s, const Args& a) {
    auto ops = number(a, "ops", std::nullopt);
    auto seed = number(a, "seed", 1);
    auto list =
        a.options.count("tables")
            ? store::parseTableList(a.options.at("tables"))
            : Result<std::vector<std::string>>(makeError(Errc::InvalidArgument, "--tables is required"));
    if (!ops || *ops == 0) return fail("--ops N is required (N >= 1)");
    if (!seed) return fail("--seed is not a number");
    if (!list) return fail(list.error().message);
    auto pacer = Pacer::fromArgs(a);
    if (!pacer) return fail("--pause-ms and --every take numbers (--every >= 1)");
    const std::vector<std::string>& tables = *list;
    Rng rng(*seed);
    uint64_t done = 0, txns = 0, puts = 0, dels = 0, clears = 0, lastSeq = 0;
    std::string value;
    while (done < *ops) {
        // Transaction sizes: mostly small, some medium, a few large.
        uint64_t pick = rng.below(100), size;
        if (pick < 50)
            size = 1 + rng.below(5);
        else if (pick < 85)
            size = 1 + rng.below(50);
        else if (pick < 97)
            size = 1 + rng.below(300);
        else
            size = 1 + rng.below(1000);
        size = std::min(size, *ops - done);
        auto txn = s.beginWrite();
        if (!txn) return fail(txn.error().message);
        for (uint64_t j = 0; j < size; ++j) {
            const std::string& table = tables[rng.below(tables.size())];
            uint64_t what = rng.below(2000);
            std::string key = mixedKey(rng.below(kKeysPerTable));
            if (what == 0) {
                if (auto r = txn->clear(table); !r) return fail(r.error().message);
                ++clears;
            } else if (what < 560) {
                auto r = txn->del(table, Bytes(key));
                if (!r) return fail(r.error().message);
                ++dels;
            } else {
                value.resize(rng.below(300));
                for (auto& c : value) c = static_cast<char>(rng.next());
                if (auto r = txn->put(table, Bytes(key), Bytes(value)); !r) return fail(r.error().message);
                ++puts;
            }
        }
        auto c = txn->commit();
        if (!c) return fail(c.error().message);
        if (*c) lastSeq = *c;
        done += size;
        ++txns;
        pacer->committed();
    }
    printf("mixed: %llu operations in %llu transactions: %llu puts, %llu dels, %llu clears; head seq %llu\n",
           (unsigned long long)done, (unsigned long long)txns, (unsigned long long)puts,
           (unsigned long long)dels, (unsigned long long)clears, (unsigned long long)lastSeq);
    return 0;
}

std::string recKey(uint64_t i) {
    char b[32];
    snprintf(b, sizeof b, "rec/%010llu", (unsigned long long)i);
    return b;
}

std::string tailKey(uint64_t i) {
    char b[32];
    snprintf(b, sizeof b, "tail/%010llu", (unsigned long long)i);
    return b;
}

// The `counter` step inside an open write transaction: counter = c+1, rec/(c+1), tail/(c+1),
// tail/c deleted. Returns c+1.
template <typename Txn>
Result<uint64_t> counterStep(Txn& txn) {
    auto cur = txn.get(kCounterTable, Bytes(std::string_view("counter")));
    uint64_t c = 0;
    if (cur.ok() && *cur) {
        auto v = parseU64((**cur).view());
        if (!v) return makeError(Errc::Corrupt, "ctr/counter holds '" + (**cur).str() + "', not a number");
        c = *v;
    }
    uint64_t i = c + 1;
    std::string text = std::to_string(i);
    if (auto r = txn.put(kCounterTable, Bytes(std::string_view("counter")), Bytes(text)); !r)
        return r.error();
    if (auto r = txn.put(kCounterTable, Bytes(recKey(i)), Bytes(text)); !r) return r.error();
    if (auto r = txn.put(kCounterTable, Bytes(tailKey(i)), Bytes(text)); !r) return r.error();
    if (c > 0) {
        if (auto r = txn.del(kCounterTable, Bytes(tailKey(c))); !r) return r.error();
    }
    return i;
}

int runSoak(store::Store& s, const Args& a) {
    auto seconds = number(a, "seconds", std::nullopt);
    auto seed = number(a, "seed", 1);
    auto pauseMs = number(a, "pause-ms", 0);
    auto list =
        a.options.count("tables")
            ? store::parseTableList(a.options.at("tables"))
            : Result<std::vector<std::string>>(makeError(Errc::InvalidArgument, "--tables is required"));
    if (!seconds || *seconds == 0) return fail("--seconds S is required (S >= 1)");
    if (!seed || !pauseMs) return fail("--seed and --pause-ms take numbers");
    if (!list) return fail(list.error().message);
    const std::vector<std::string>& tables = *list;
    constexpr uint64_t kSoakKeys = 20000;
    Rng rng(*seed);
    auto end = std::chrono::steady_clock::now() + std::chrono::seconds(*seconds);
    uint64_t txns = 0, puts = 0, dels = 0, clears = 0, biggest = 0, counter = 0, seq = 0;
    std::string value;
    while (std::chrono::steady_clock::now() < end) {
        auto txn = s.beginWrite();
        if (!txn) return fail(txn.error().message);
        const std::string& table = tables[rng.below(tables.size())];
        uint64_t kind = rng.below(1000), size = 0;
        if (kind < 400) {
            size = 1;  // a single put (below)
        } else if (kind < 600) {
            if (auto r = txn->del(table, Bytes(mixedKey(rng.below(kSoakKeys)))); !r)
                return fail(r.error().message);
            ++dels;
        } else if (kind < 605) {
            if (auto r = txn->clear(table); !r) return fail(r.error().message);
            ++clears;
        } else {
            uint64_t pick = rng.below(100);
            uint64_t most = pick < 60 ? 20 : pick < 90 ? 500 : pick < 99 ? 3000 : 10000;
            size = 1 + rng.below(most);
        }
        for (uint64_t j = 0; j < size; ++j) {
            const std::string& t = size == 1 ? table : tables[rng.below(tables.size())];
            std::string key = mixedKey(rng.below(kSoakKeys));
            if (size > 1 && rng.below(4) == 0) {
                if (auto r = txn->del(t, Bytes(key)); !r) return fail(r.error().message);
                ++dels;
                continue;
            }
            value.resize(rng.below(size > 100 ? 64 : 300));
            for (auto& c : value) c = static_cast<char>(rng.next());
            if (auto r = txn->put(t, Bytes(key), Bytes(value)); !r) return fail(r.error().message);
            ++puts;
        }
        auto step = counterStep(*txn);
        if (!step) return fail(step.error().message);
        auto committed = txn->commit();
        if (!committed) return fail(committed.error().message);
        counter = *step;
        seq = *committed;
        biggest = std::max(biggest, size);
        ++txns;
        if (*pauseMs > 0) std::this_thread::sleep_for(std::chrono::milliseconds(*pauseMs));
    }
    printf("soak: txns=%llu counter=%llu puts=%llu dels=%llu clears=%llu biggest=%llu seq=%llu\n",
           (unsigned long long)txns, (unsigned long long)counter, (unsigned long long)puts,
           (unsigned long long)dels, (unsigned long long)clears, (unsigned long long)biggest,
           (unsigned long long)seq);
    return 0;
}

int runCounter(store::Store& s, const Args& a) {
    auto count = number(a, "count", std::nullopt);
    auto pacer = Pacer::fromArgs(a);
    if (!count || *count == 0) return fail("--count N is required (N >= 1)");
    if (!pacer) return fail("--pause-ms and --every take numbers (--every >= 1)");
    uint64_t last = 0, seq = 0;
    for (uint64_t n = 0; n < *count; ++n) {
        auto txn = s.beginWrite();
        if (!txn) return fail(txn.error().message);
        auto cur = txn->get(kCounterTable, Bytes(std::string_view("counter")));
        uint64_t c = 0;
        if (cur.ok() && *cur) {
            auto v = parseU64((**cur).view());
            if (!v) return fail("ctr/counter holds '" + (**cur).str() + "', not a number");
            c = *v;
        }
        uint64_t i = c + 1;
        std::string text = std::to_string(i);
        if (auto r = txn->put(kCounterTable, Bytes(std::string_view("counter")), Bytes(text)); !r)
            return fail(r.error().message);
        if (auto r = txn->put(kCounterTable, Bytes(recKey(i)), Bytes(text)); !r)
            return fail(r.error().message);
        if (auto r = txn->put(kCounterTable, Bytes(tailKey(i)), Bytes(text)); !r)
            return fail(r.error().message);
        if (c > 0) {
            auto r = txn->del(kCounterTable, Bytes(tailKey(c)));
            if (!r) return fail(r.error().message);
        }
        auto committed = txn->commit();
        if (!committed) return fail(committed.error().message);
        last = i;
        seq = *committed;
        pacer->committed();
    }
    printf("counter: wrote up to %llu; head seq %llu\n", (unsigned long long)last, (unsigned long long)seq);
    return 0;
}

int runCheckCounter(store::Store& s) {
    auto txn = s.beginRead();
    if (!txn) return fail(txn.error().message);
    uint64_t counter = 0;
    auto cur = txn->get(kCounterTable, Bytes(std::string_view("counter")));
    if (!cur.ok() && cur.error().code != Errc::NotFound) return fail(cur.error().message);
    if (cur.ok() && *cur) {
        auto v = parseU64((**cur).view());
        if (!v) return fail("ctr/counter holds '" + (**cur).str() + "', not a number");
        counter = *v;
    }
    uint64_t records = 0, tails = 0;
    std::string problem;
    if (cur.ok()) {
        auto scanned = txn->scan(kCounterTable, Bytes(), 0, [&](Bytes key, Bytes value) {
            std::string_view k = key.view();
            if (k == "counter") return true;
            if (k.substr(0, 4) == "rec/") {
                ++records;
                if (key.str() != recKey(records) || value.str() != std::to_string(records)) {
                    problem = "record " + std::to_string(records) + " is " + printable(key) + "=" +
                              printable(value) + " (a lost or extra transaction)";
                    return false;
                }
                return true;
            }
            if (k.substr(0, 5) == "tail/") {
                ++tails;
                if (key.str() != tailKey(counter)) {
                    problem = "stale " + printable(key) + " with counter " + std::to_string(counter) +
                              " (an old transaction applied again?)";
                    return false;
                }
                return true;
            }
            problem = "unexpected key " + printable(key);
            return false;
        });
        if (!scanned) return fail(scanned.error().message);
    }
    if (problem.empty() && records != counter)
        problem = "counter " + std::to_string(counter) + " but " + std::to_string(records) + " records";
    if (problem.empty() && tails != (counter > 0 ? 1u : 0u))
        problem = std::to_string(tails) + " tail keys with counter " + std::to_string(counter);
    if (!problem.empty()) return fail("ctr: " + problem);
    // The position of the same read transaction: a test can check seq - counter stays constant
    // (one seq per counter step: no seq skipped or applied twice).
    printf("counter=%llu records=%llu position=%s:%llu\n", (unsigned long long)counter,
           (unsigned long long)records, hex64(txn->meta().generation).c_str(),
           (unsigned long long)txn->meta().seq);
    return 0;
}

// FNV-1a 64 over the bytes.
uint64_t fnv(uint64_t h, Bytes b) {
    for (size_t i = 0; i < b.size; ++i) h = (h ^ b.data[i]) * 0x100000001b3ull;
    return h;
}

int runObserve(store::Store& s, const Args& a) {
    auto list =
        a.options.count("tables")
            ? store::parseTableList(a.options.at("tables"))
            : Result<std::vector<std::string>>(makeError(Errc::InvalidArgument, "--tables is required"));
    if (!list) return fail(list.error().message);
    auto txn = s.beginRead();
    if (!txn) return fail(txn.error().message);
    std::string line = "position=" + hex64(txn->meta().generation) + ":" + std::to_string(txn->meta().seq);
    for (const std::string& table : *list) {
        uint64_t entries = 0, h = 0xcbf29ce484222325ull;
        auto scanned = txn->scan(table, Bytes(), 0, [&](Bytes key, Bytes value) {
            uint8_t n[8];
            putBe64(n, key.size);
            h = fnv(fnv(h, Bytes(n, 8)), key);
            putBe64(n, value.size);
            h = fnv(fnv(h, Bytes(n, 8)), value);
            ++entries;
            return true;
        });
        if (!scanned && scanned.error().code == Errc::NotFound) {
            line += " " + table + "=absent";
            continue;
        }
        if (!scanned) return fail(scanned.error().message);
        line += " " + table + "=" + std::to_string(entries) + ":" + hex64(h);
    }
    printf("%s\n", line.c_str());
    return 0;
}

int runHold(store::Store& s, const Args& a) {
    auto holdMs = number(a, "hold-ms", std::nullopt);
    auto before = number(a, "before", 20);
    if (!a.options.count("table")) return fail("--table T is required");
    if (!holdMs || *holdMs == 0 || *holdMs > 600000) return fail("--hold-ms H is required (1..600000)");
    if (!before || *before > 100000) return fail("--before takes a number up to 100000");
    const std::string& table = a.options.at("table");
    for (uint64_t i = 0; i < *before; ++i) {
        auto w = s.beginWrite();
        if (!w) return fail(w.error().message);
        std::string k = "before/" + std::to_string(i);
        auto p = w->put(table, Bytes(k), Bytes("b"));
        if (!p) return fail(p.error().message);
        auto c = w->commit();
        if (!c) return fail(c.error().message);
    }
    auto w = s.beginWrite();
    if (!w) return fail(w.error().message);
    auto p = w->put(table, Bytes("held"), Bytes("1"));
    if (!p) return fail(p.error().message);
    printf("holding\n");
    fflush(stdout);
    pollfd in{0, POLLIN, 0};
    (void)::poll(&in, 1, static_cast<int>(*holdMs));
    printf("committing\n");
    fflush(stdout);
    auto c = w->commit();
    if (!c) return fail(c.error().message);
    printf("released seq=%llu\n", static_cast<unsigned long long>(*c));
    fflush(stdout);
    return 0;
}

int runCorrupt(store::Store& s, const Args& a) {
    for (const char* o : {"table", "key", "value"})
        if (!a.options.count(o)) return fail(std::string("--") + o + " is required");
    // Through the slave's apply path, as a forged change model would be applied: the table's
    // digest follows the damaged data, the position stays the master's.
    wire::ChangeModelWriter w;
    w.put(a.options.at("table"), Bytes(a.options.at("key")), Bytes(a.options.at("value")));
    Bytes model = w.finishIncremental(0, 1, 1);
    auto frame = wire::verifyFrame(model);
    if (!frame) return fail(frame.error().message);
    auto txn = s.beginApply();
    if (!txn) return fail(txn.error().message);
    auto p = txn->apply((*frame)->message_as_ChangeModel());
    if (!p) return fail(p.error().message);
    auto c = txn->commit();
    if (!c) return fail(c.error().message);
    printf("corrupted %s/%s\n", a.options.at("table").c_str(), a.options.at("key").c_str());
    return 0;
}

int runMakeSlave(store::Store& s, const Args& a) {
    if (!a.options.count("master")) return fail("--master is required");
    store::StoreOptions mo;
    mo.create = false;
    mo.readOnly = true;
    auto m = store::Store::open(a.options.at("master"), mo);
    if (!m) return fail(a.options.at("master") + ": " + m.error().message);
    auto meta = (*m)->meta();
    if (!meta) return fail(meta.error().message);
    auto r = s.setRole(store::Role::Slave);
    if (!r) return fail(r.error().message);
    auto txn = s.beginApply();
    if (!txn) return fail(txn.error().message);
    auto f = txn->beginFull(meta->watched);
    if (!f) return fail(f.error().message);
    auto p = txn->setPosition(meta->generation, meta->seq);
    if (!p) return fail(p.error().message);
    auto c = txn->commit();
    if (!c) return fail(c.error().message);
    printf("slave of %s at %s:%llu watching %s\n", a.options.at("master").c_str(),
           hex64(meta->generation).c_str(), static_cast<unsigned long long>(meta->seq),
           store::joinTableList(meta->watched).c_str());
    return 0;
}

int runForward(store::Store& s, const Args& a) {
    if (!a.options.count("master")) return fail("--master is required");
    store::StoreOptions mo;
    mo.create = false;
    mo.noSync = true;
    auto m = store::Store::open(a.options.at("master"), mo);
    if (!m) return fail(a.options.at("master") + ": " + m.error().message);
    std::vector<std::pair<uint64_t, std::string>> queued;
    auto rd = s.readOutbox(0, [&](uint64_t id, Bytes frame) {
        queued.emplace_back(id, frame.str());
        return true;
    });
    if (!rd) return fail(rd.error().message);
    for (const auto& [id, frame] : queued) {
        auto f = wire::verifyFrame(Bytes(frame));
        if (!f) return fail("request " + std::to_string(id) + ": " + f.error().message);
        const wire::WriteRequest* req = wire::asWriteRequest(*f);
        if (!req) return fail("request " + std::to_string(id) + " is not a WriteRequest");
        auto outcome = (*m)->applyRequest(req);
        if (!outcome) return fail("request " + std::to_string(id) + ": " + outcome.error().message);
        auto txn = s.beginApply();
        if (!txn) return fail(txn.error().message);
        auto settled = txn->settleOwnRequest(outcome->result);
        if (!settled) return fail(settled.error().message);
        auto c = txn->commit();
        if (!c) return fail(c.error().message);
        if (outcome->result.rejected)
            printf("request %llu: rejected: %s\n", static_cast<unsigned long long>(id),
                   outcome->result.reason.c_str());
        else
            printf("request %llu: committed seq %llu\n", static_cast<unsigned long long>(id),
                   static_cast<unsigned long long>(outcome->result.seq));
    }
    return 0;
}

int usage() {
    fprintf(
        stderr,
        "usage: scenario_writer mixed --data DIR --ops N --seed S --tables T1,T2,... [--pause-ms P "
        "--every K]\n"
        "       scenario_writer counter --data DIR --count N [--pause-ms P --every K]\n"
        "       scenario_writer soak --data DIR --seconds S --seed X --tables T1,T2,... [--pause-ms P]\n"
        "       scenario_writer check-counter --data DIR\n"
        "       scenario_writer observe --data DIR --tables T1,T2,...\n"
        "       scenario_writer hold --data DIR --table T --hold-ms H [--before N]\n"
        "       scenario_writer corrupt --data DIR --table T --key K --value V\n"
        "       scenario_writer make-slave --data DIR --master MDIR\n"
        "       scenario_writer forward --data DIR --master MDIR\n"
        "       scenario_writer orders --data DIR --prefix P --count N [--first F] [--add D] [--last-key K]\n"
        "                              [--chain 1] [--claim KEY] [--wait-ms W] [--out FILE] [--pause-ms P "
        "--every K]\n");
    return 2;
}

int run(int argc, char** argv) {
    auto args = parseArgs(argc, argv);
    if (!args || !args->options.count("data")) return usage();
    const Args& a = *args;
    bool check = a.command == "check-counter" || a.command == "observe" || a.command == "check-orders";
    if (!check && a.command != "mixed" && a.command != "counter" && a.command != "hold" &&
        a.command != "soak" && a.command != "corrupt" && a.command != "make-slave" &&
        a.command != "forward" && a.command != "orders")
        return usage();
    store::StoreOptions options;
    options.create = a.command == "make-slave";
    options.readOnly = check;
    options.noSync = true;  // no power loss in these tests; the daemons' own commits are unaffected
    auto s = store::Store::open(a.options.at("data"), options);
    if (!s) return fail(a.options.at("data") + ": " + s.error().message);
    if (a.command == "observe") return runObserve(**s, a);
    if (a.command == "check-counter") return runCheckCounter(**s);
    if (a.command == "mixed") return runMixed(**s, a);
    if (a.command == "hold") return runHold(**s, a);
    if (a.command == "soak") return runSoak(**s, a);
    if (a.command == "corrupt") return runCorrupt(**s, a);
    if (a.command == "make-slave") return runMakeSlave(**s, a);
    if (a.command == "forward") return runForward(**s, a);
    if (a.command == "orders") return runOrders(**s, a);
    if (a.command == "check-orders") return runCheckOrders(**s, a);
    return runCounter(**s, a);
}

}  // namespace
}  // namespace possync::scenario

int main(int argc, char** argv) {
    return possync::scenario::run(argc, argv);
}
