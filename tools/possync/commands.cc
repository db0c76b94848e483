#include "commands.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <thread>
#include <vector>

#include "base/bytes.h"

#include "store/requests.h"
#include "trust/identity.h"

namespace possync::tool {

static int fail(const std::string& what) {
    fprintf(stderr, "possync: %s\n", what.c_str());
    return 1;
}

static int fail(const Error& e) {
    return fail(e.message);
}

// A key or value that does not parse (bad hex): bad usage, exit 2, like any unparsable value.
static int badArg(const Error& e) {
    fprintf(stderr, "possync: %s\n", e.message.c_str());
    return 2;
}

// Keys and values typed on the command line: with --hex, hex (a leading 0x allowed); without,
// the console's rule (base/bytes.h): "0x..." is hex, anything else the text itself.
static Result<std::string> decode(const TextMode& m, const std::string& text, const char* what) {
    if (!m.hex) return parseBytesArg(text, what);
    std::string_view digits = text;
    if (digits.substr(0, 2) == "0x" || digits.substr(0, 2) == "0X") digits.remove_prefix(2);
    auto b = fromHex(digits);
    if (!b) return makeError(Errc::InvalidArgument, std::string(what) + " is not valid hex: '" + text + "'");
    return std::move(*b);
}

// One JSON object from (name, value) pairs. The counters and positions are numbers; everything
// else (ids, hex generations and digests, keys and values) is a string.
static std::string jsonObject(const std::vector<std::pair<std::string, std::string>>& fields) {
    static constexpr std::string_view kNumbers[] = {"seq",         "count",     "resync_seq",
                                                    "log_entries", "log_first", "log_bytes",
                                                    "format",      "term",      "highest_term_seen"};
    std::string out = "{";
    for (const auto& [name, value] : fields) {
        if (out.size() > 1) out += ", ";
        out += jsonQuote(name) + ": ";
        const bool number = std::find(std::begin(kNumbers), std::end(kNumbers), name) != std::end(kNumbers) &&
                            !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        out += number ? value : jsonQuote(value);
    }
    return out + "}";
}

// A key's or value's fields in JSON output: as the text output shows it, and as hex.
static void addBytes(std::vector<std::pair<std::string, std::string>>& fields, const char* name, Bytes b) {
    fields.emplace_back(name, displayBytes(b));
    fields.emplace_back(std::string(name) + "_hex", toHex(b));
}

// What get and dump print: plain hex with --hex; else text when it is text, "0x" + hex otherwise.
static std::string encode(const TextMode& m, Bytes b) {
    return m.hex ? toHex(b) : displayBytes(b);
}

// Adds the --if-* condition on (table, key) to the transaction.
static Status requireCondition(store::WriteTxn& txn, const TextMode& m, const std::string& table, Bytes key,
                               const WriteOptions& w) {
    switch (w.condition) {
        case WriteOptions::Condition::None: return {};
        case WriteOptions::Condition::Absent: return txn.require(table, key, store::Require::Absent);
        case WriteOptions::Condition::Present: return txn.require(table, key, store::Require::Present);
        case WriteOptions::Condition::Value: {
            auto v = decode(m, w.ifValue, "--if-value");
            if (!v) return v.takeError();
            return txn.require(table, key, store::Require::ValueHash, store::valueHash(Bytes(*v)));
        }
    }
    return {};
}

static int failWrite(const Error& e) {
    // A failed condition is a rejection, the same words as on a slave whose master rejected it.
    if (e.code == Errc::Rejected) return fail("rejected: " + e.message);
    return fail(e);
}

static uint64_t steadyMs() {
    return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now().time_since_epoch())
                        .count());
}

// Commits the write and, on a slave that queued a request, waits as `w` says.
static int finishWrite(store::Store& s, store::WriteTxn& txn, const WriteOptions& w) {
    auto c = txn.commitWrite();
    if (!c) return failWrite(c.error());
    if (c->request == 0) {  // applied here (a master, or a slave's local table)
        if (w.printSeq) printf("seq %llu\n", (unsigned long long)c->seq);
        return 0;
    }
    if (!w.wait) {
        printf("queued request %llu\n", (unsigned long long)c->request);
        return 0;
    }
    // Polls the request's state: one short read transaction per turn. The daemon settles it
    // within a round trip to the master when the link is up; a few ms between looks costs
    // nothing next to that.
    const uint64_t deadline = steadyMs() + w.waitMs;
    for (;;) {
        auto st = s.requestState(c->request);
        if (!st) return fail(st.error());
        switch (st->kind) {
            case store::RequestState::Committed:
                if (w.printSeq) printf("seq %llu\n", (unsigned long long)st->seq);
                return 0;
            case store::RequestState::Rejected: return fail("rejected: " + st->reason);
            case store::RequestState::Unknown:
                return fail("request " + std::to_string(c->request) + ": " + st->reason);
            case store::RequestState::Pending: break;
        }
        uint64_t now = steadyMs();
        if (now >= deadline) {
            fprintf(stderr, "possync: pending: request %llu queued, not yet applied\n",
                    (unsigned long long)c->request);
            return kExitPending;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(std::min<uint64_t>(deadline - now, 5)));
    }
}

int cmdPut(store::Store& s, const TextMode& m, const std::string& table, const std::string& key,
           const std::string& value, const WriteOptions& w) {
    auto k = decode(m, key, "KEY");
    if (!k) return badArg(k.error());
    Result<std::string> v = w.rawValue ? Result<std::string>(*w.rawValue) : decode(m, value, "VALUE");
    if (!v) return badArg(v.error());
    auto txn = s.beginWrite();
    if (!txn) return fail(txn.error());
    if (auto r = requireCondition(*txn, m, table, Bytes(*k), w); !r) return failWrite(r.error());
    auto r = txn->put(table, Bytes(*k), Bytes(*v));
    if (!r) return fail(r.error());
    return finishWrite(s, *txn, w);
}

int cmdAdd(store::Store& s, const TextMode& m, const std::string& table, const std::string& key,
           int64_t delta, const WriteOptions& w) {
    auto k = decode(m, key, "KEY");
    if (!k) return badArg(k.error());
    auto txn = s.beginWrite();
    if (!txn) return fail(txn.error());
    if (auto r = requireCondition(*txn, m, table, Bytes(*k), w); !r) return failWrite(r.error());
    auto r = txn->add(table, Bytes(*k), delta);
    if (!r) return fail(r.error());
    return finishWrite(s, *txn, w);
}

int cmdGet(store::Store& s, const TextMode& m, const std::string& table, const std::string& key) {
    auto k = decode(m, key, "KEY");
    if (!k) return badArg(k.error());
    auto txn = s.beginRead();
    if (!txn) return fail(txn.error());
    auto v = txn->get(table, Bytes(*k));
    if (!v) return fail(v.error());
    if (!*v) return fail("no such key in " + table + ": " + key);
    if (m.json) {
        std::vector<std::pair<std::string, std::string>> fields{{"table", table}};
        addBytes(fields, "key", Bytes(*k));
        addBytes(fields, "value", **v);
        printf("%s\n", jsonObject(fields).c_str());
        return 0;
    }
    std::string out = encode(m, **v);
    fwrite(out.data(), 1, out.size(), stdout);
    fputc('\n', stdout);
    return 0;
}

int cmdDel(store::Store& s, const TextMode& m, const std::string& table, const std::string& key,
           const WriteOptions& w) {
    auto k = decode(m, key, "KEY");
    if (!k) return badArg(k.error());
    auto txn = s.beginWrite();
    if (!txn) return fail(txn.error());
    if (auto r = requireCondition(*txn, m, table, Bytes(*k), w); !r) return failWrite(r.error());
    auto r = txn->del(table, Bytes(*k));
    if (!r) return fail(r.error());
    // Applied here: an absent key is an error, as before. A slave's forwarded DEL cannot know
    // (the master decides), so it always goes out.
    if (!*r) return fail("no such key in " + table + ": " + key);
    return finishWrite(s, *txn, w);
}

int cmdDump(store::Store& s, const TextMode& m, const std::string& table) {
    auto txn = s.beginRead();
    if (!txn) return fail(txn.error());
    std::vector<std::string> names;
    if (table.empty()) {
        auto all = txn->tableNames();
        if (!all) return fail(all.error());
        names = std::move(*all);
    } else {
        names.push_back(table);
    }
    std::string line;
    for (const auto& name : names) {
        auto r = txn->scan(name, Bytes(), 0, [&](Bytes k, Bytes v) {
            if (m.json) {
                std::vector<std::pair<std::string, std::string>> fields{{"table", name}};
                addBytes(fields, "key", k);
                addBytes(fields, "value", v);
                line = jsonObject(fields) + "\n";
                fwrite(line.data(), 1, line.size(), stdout);
                return true;
            }
            line.clear();
            if (table.empty()) line += name + "\t";
            line += encode(m, k);
            line += '\t';
            line += encode(m, v);
            line += '\n';
            fwrite(line.data(), 1, line.size(), stdout);
            return true;
        });
        if (!r) return fail(r.error());
    }
    return 0;
}

Result<std::string> digestLine(store::Store& s) {
    auto txn = s.beginRead();
    if (!txn) return txn.takeError();
    uint64_t digest = 0, count = 0;
    for (const auto& t : txn->meta().watched) {
        auto d = txn->digest(t);
        if (!d) return d.takeError();
        auto n = txn->entries(t);
        if (!n && n.error().code != Errc::NotFound) return n.takeError();
        // Entry hashes are seeded with the table name, so XOR over tables stays meaningful.
        digest ^= *d;
        count += n ? *n : 0;
    }
    const auto& meta = txn->meta();
    return "position=" + hex64(meta.generation) + ":" + std::to_string(meta.seq) +
           " digest=" + hex64(digest) + " count=" + std::to_string(count);
}

int cmdDigest(store::Store& s, const TextMode& m) {
    auto line = digestLine(s);
    if (!line) return fail(line.error());
    if (m.json) {
        // "position=GEN:SEQ digest=HEX count=N" as fields.
        std::vector<std::pair<std::string, std::string>> fields;
        std::istringstream in(*line);
        for (std::string word; in >> word;) {
            auto eq = word.find('=');
            if (eq == std::string::npos) continue;
            std::string name = word.substr(0, eq), value = word.substr(eq + 1);
            if (name == "position") {
                auto colon = value.find(':');
                fields.emplace_back("generation", value.substr(0, colon));
                fields.emplace_back("seq", colon == std::string::npos ? "" : value.substr(colon + 1));
            } else {
                fields.emplace_back(name, value);
            }
        }
        printf("%s\n", jsonObject(fields).c_str());
        return 0;
    }
    printf("%s\n", line->c_str());
    return 0;
}

int cmdInfo(store::Store& s, const TextMode& mode) {
    auto m = s.meta();
    if (!m) return fail(m.error());
    auto log = s.logInfo();
    if (!log) return fail(log.error());
    // Failover (DESIGN.md §10): the lineage a technician compares across boards.
    std::string history;
    for (const auto& r : m->history) {
        if (!history.empty()) history += ", ";
        history += hex64(r.generation);
        if (r.parent) history += " (from " + hex64(r.parent) + " at " + std::to_string(r.fork) + ")";
        history += " term " + std::to_string(r.term);
    }
    const std::vector<std::pair<std::string, std::string>> facts = {
        {"role", store::roleName(m->role)},
        {"device", m->device},
        {"generation", hex64(m->generation)},
        {"seq", std::to_string(m->seq)},
        {"synced", m->synced ? "yes" : "no"},
        {"watched", store::joinTableList(m->watched)},
        {"resync_seq", std::to_string(m->resyncSeq)},
        {"log_entries", std::to_string(log->entries)},
        {"log_first", std::to_string(log->first)},
        {"log_bytes", std::to_string(log->bytes)},
        {"format", std::to_string(m->format)},
        {"term", std::to_string(m->term)},
        {"highest_term_seen", std::to_string(m->highestTermSeen)},
        {"history", history},
        {"fenced", m->fenced.empty() ? "no" : m->fenced},
        {"role_from", store::roleFromData(*m) ? "data directory (after a failover)" : "possyncd --role"},
    };
    if (mode.json) {
        printf("%s\n", jsonObject(facts).c_str());
        return 0;
    }
    for (const auto& [name, value] : facts) printf("%s: %s\n", name.c_str(), value.c_str());
    return 0;
}

int cmdWatch(store::Store& s, const std::string* list) {
    if (!list) {
        auto m = s.meta();
        if (!m) return fail(m.error());
        printf("%s\n", store::joinTableList(m->watched).c_str());
        return 0;
    }
    auto tables = store::parseTableList(*list);
    if (!tables) return fail(tables.error());
    auto r = s.setWatchedTables(*tables);
    if (!r) return fail(r.error());
    return 0;
}

void syntheticKey(uint64_t i, uint8_t out[16]) {
    putBe64(out, 0);
    putBe64(out + 8, i);
}

void syntheticValue(uint64_t seed, uint64_t i, uint8_t* out, size_t size) {
    // splitmix64 stream per record: incompressible, reproducible on every board.
    uint64_t x = seed * 0x9e3779b97f4a7c15ull ^ (i + 1) * 0xbf58476d1ce4e5b9ull;
    size_t pos = 0;
    while (pos < size) {
        x += 0x9e3779b97f4a7c15ull;
        uint64_t z = x;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        for (int b = 0; b < 8 && pos < size; ++b, z >>= 8) out[pos++] = static_cast<uint8_t>(z);
    }
}

int cmdLoad(store::Store& s, const LoadOptions& o) {
    if (o.records == 0) return fail("--records must be at least 1");
    if (o.valueSize > (64u << 20)) return fail("--value-size is larger than 64 MiB");
    auto tv = store::validateTableName(o.table);
    if (!tv) return fail(tv.error());
    uint64_t batch = o.batch;
    if (batch == 0) {
        // About 8 MiB of change model per transaction: big enough to amortise a commit, small
        // enough to go in few frames and to keep a slave's apply transaction short.
        uint64_t per = o.valueSize + 16 + 48;
        batch = std::max<uint64_t>(1, (uint64_t(8) << 20) / per);
    }
    std::vector<uint8_t> value(o.valueSize);
    uint8_t key[16];
    auto t0 = std::chrono::steady_clock::now();
    const bool progress = ::isatty(STDERR_FILENO) == 1;
    auto lastShown = t0;
    uint64_t done = 0, txns = 0;
    while (done < o.records) {
        auto txn = s.beginWrite();
        if (!txn) return fail(txn.error());
        uint64_t n = std::min(batch, o.records - done);
        for (uint64_t j = 0; j < n; ++j) {
            uint64_t i = o.start + done + j;
            syntheticKey(i, key);
            syntheticValue(o.seed, i, value.data(), value.size());
            auto r = txn->put(o.table, Bytes(key, 16), Bytes(value.data(), value.size()));
            if (!r) return fail(r.error());
        }
        auto c = txn->commit();
        if (!c) return fail(c.error());
        done += n;
        ++txns;
        // Progress on a terminal (a million records take a while on a board), at most every
        // quarter second, on one line that the result then replaces.
        if (progress) {
            auto now = std::chrono::steady_clock::now();
            if (now - lastShown >= std::chrono::milliseconds(250) || done == o.records) {
                lastShown = now;
                fprintf(stderr, "\rloading %s: %llu of %llu records (%llu%%)", o.table.c_str(),
                        (unsigned long long)done, (unsigned long long)o.records,
                        (unsigned long long)(done * 100 / o.records));
                fflush(stderr);
            }
        }
    }
    if (progress) fputs("\r\x1b[K", stderr);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    printf("loaded %llu records of %llu bytes into %s in %llu transactions, %.3f s (%.0f records/s)\n",
           (unsigned long long)done, (unsigned long long)o.valueSize, o.table.c_str(),
           (unsigned long long)txns, secs, secs > 0 ? double(done) / secs : 0.0);
    return 0;
}

int cmdKey(const std::string& dir) {
    if (auto st = trust::initSodium(); !st) {
        fprintf(stderr, "possync: %s\n", st.error().message.c_str());
        return 1;
    }
    auto id = trust::Identity::loadOrCreate(dir);
    if (!id) {
        fprintf(stderr, "possync: %s\n", id.error().message.c_str());
        return 1;
    }
    printf("key %s\nfingerprint %s\n", trust::publicKeyHex(id->publicKey()).c_str(),
           id->fingerprint().c_str());
    return 0;
}

}  // namespace possync::tool
