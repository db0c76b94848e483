#include "daemon/console_backend.h"

#include <algorithm>
#include <sstream>

#include "base/bytes.h"
#include "uv/loop.h"

#include "console/serial_console.h"
#include "console/socket_console.h"
#include "daemon/daemon.h"
#include "discovery/advertiser.h"
#include "discovery/master_finder.h"

namespace possync::daemon {

namespace {
// "chunk 12, 340000 of 1000000 records received (34%)": a FULL sync's progress on the consoles.
std::string fullProgress(uint64_t chunks, uint64_t records, uint64_t announced, const char* verb) {
    std::string text = "chunk " + std::to_string(chunks) + ", " + std::to_string(records);
    if (announced) text += " of " + std::to_string(announced);
    text += " records " + std::string(verb);
    if (announced) text += " (" + std::to_string(std::min<uint64_t>(100, records * 100 / announced)) + "%)";
    return text;
}
}  // namespace

console::StatusInfo DaemonBackend::status() {
    console::StatusInfo s;
    s.role = store::roleName(daemon_.role());
    s.store = daemon_.options().store;
    auto meta = daemon_.store().meta();
    if (meta) {
        s.device = meta->device;
        s.key = daemon_.keyFingerprint();
        s.generation = meta->generation;
        s.position = meta->seq;
        s.term = meta->term;
    }
    s.uptimeS = (daemon_.loopNowMs() - daemon_.startedMs()) / 1000;
    s.trust = daemon_.trustStatus();
    if (auto* m = daemon_.master()) {
        s.masterHead = m->head();
        s.link = "listening on " + m->address() + ", " + std::to_string(m->sessions().size()) + " slave(s)";
        s.discovery =
            daemon_.advertiser() ? "avahi " + daemon_.advertiser()->serviceName() : "none (not advertised)";
        if (std::string why = daemon_.fencedReason(); !why.empty()) {
            s.link = "FENCED: " + why;
            s.waiting = "fenced: serves no slave and takes no write; run rejoin";
        }
    } else if (auto* r = daemon_.replica()) {
        auto st = r->status();
        s.generation = st.generation;
        s.position = st.position;
        if (st.masterHead) s.masterHead = st.masterHead;
        // Lag means something only on a live link of the same history: not while locating or
        // backing off, nor while waiting on another generation (its head is not comparable).
        const bool linked =
            st.state == "streaming" || st.state == "receiving-full" || st.state == "full-replay";
        if (linked && st.waitingReason.empty()) {
            s.lagChanges = st.lagChanges;
            s.lagMs = st.lagMs;
        }
        s.link = st.state;
        if (st.state == "receiving-full")
            s.link += " " + fullProgress(st.fullProgressChunks, st.fullRecords, st.fullAnnounced, "received");
        s.discovery = st.foundVia;
        s.failover = st.discarded;
        // A divergence alarm shows until the digests are seen equal again (after its FULL).
        s.waiting = st.diverged.empty()        ? st.waitingReason
                    : st.waitingReason.empty() ? st.diverged
                                               : st.diverged + "; " + st.waitingReason;
    }
    return s;
}

std::vector<console::PeerInfo> DaemonBackend::peers() {
    std::vector<console::PeerInfo> out;
    if (auto* m = daemon_.master()) {
        for (const auto& si : m->sessions()) {
            console::PeerInfo p;
            p.address = si.address;
            p.device = si.device;
            p.position = si.ackedSeq;
            p.lagChanges = si.lagChanges;
            p.lagMs = si.lagMs;
            // A slave the master cannot send to (a change over what it can take) says so here.
            p.state = si.problem.empty() ? si.state : "stuck: " + si.problem;
            if (si.fullChunks && si.problem.empty()) {
                p.state =
                    "full-sync " + fullProgress(*si.fullChunks, si.fullRecords, si.fullAnnounced, "sent");
                p.lagChanges.reset();  // not known until the FULL is whole
                p.lagMs.reset();
            }
            p.heartbeatAgoMs = si.lastHeardMsAgo;
            p.foundVia = "incoming";
            out.push_back(std::move(p));
        }
    } else if (auto* r = daemon_.replica()) {
        auto st = r->status();
        console::PeerInfo p;
        p.address = st.master.empty() ? "-" : st.master;
        p.device = st.masterDevice;
        if (st.masterHead) p.position = st.masterHead;
        p.lagChanges = st.lagChanges;
        p.lagMs = st.lagMs;
        p.state = st.state;
        if (st.state == "receiving-full")
            p.state +=
                " " + fullProgress(st.fullProgressChunks, st.fullRecords, st.fullAnnounced, "received");
        if (st.state == "streaming" || st.state == "receiving-full" || st.state == "full-replay")
            p.heartbeatAgoMs = st.lastHeardMsAgo;
        p.foundVia = st.foundVia;
        out.push_back(std::move(p));
    }
    return out;
}

std::vector<console::TableInfo> DaemonBackend::tables() {
    std::vector<console::TableInfo> out;
    auto t = daemon_.store().tables();
    if (!t) return out;
    for (const auto& ti : *t) out.push_back({ti.name, ti.entries, ti.watched, hex64(ti.digest)});
    return out;
}

Result<std::optional<std::string>> DaemonBackend::get(const std::string& table, const std::string& key) {
    auto rt = daemon_.store().beginRead();
    if (!rt) return rt.takeError();
    auto v = rt->get(table, Bytes(key));
    if (!v) return v.takeError();
    if (!*v) return std::optional<std::string>();
    return std::optional<std::string>((*v)->str());
}

Result<std::vector<console::KeyValue>> DaemonBackend::scan(const std::string& table,
                                                           const std::string& prefix, size_t limit) {
    auto rt = daemon_.store().beginRead();
    if (!rt) return rt.takeError();
    std::vector<console::KeyValue> out;
    auto r = rt->scan(table, Bytes(prefix), limit, [&](Bytes k, Bytes v) {
        out.emplace_back(k.str(), v.str());
        return true;
    });
    if (!r) return r.takeError();
    return out;
}

console::StatsInfo DaemonBackend::stats() {
    console::StatsInfo s;
    if (auto* m = daemon_.master())
        s.counters = m->stats().list();
    else if (auto* r = daemon_.replica())
        s.counters = r->stats().list();
    auto log = daemon_.store().logInfo();
    if (log) {
        s.counters.emplace_back("log_entries", log->entries);
        s.counters.emplace_back("log_bytes", log->bytes);
        s.counters.emplace_back("log_first", log->first);
    }
    // The consoles' own counters: output a terminal did not take is dropped and counted here.
    if (const auto* sc = daemon_.serialConsole()) {
        const auto& c = sc->counters();
        s.counters.emplace_back("serial_bytes_in", c.bytesIn);
        s.counters.emplace_back("serial_bytes_out", c.bytesOut);
        s.counters.emplace_back("serial_dropped_bytes", c.droppedBytes);
        s.counters.emplace_back("serial_hangups", c.hangups);
        s.counters.emplace_back("serial_reopens", c.reopens);
    }
    if (const auto* sc = daemon_.socketConsole()) {
        const auto& c = sc->counters();
        s.counters.emplace_back("console_sessions", c.accepted);
        s.counters.emplace_back("console_refused", c.refused);
        s.counters.emplace_back("console_slow_closed", c.slowClosed);
        s.counters.emplace_back("console_idle_closed", c.idleClosed);
        s.counters.emplace_back("console_commands", c.commands);
    }
    return s;
}

Result<std::string> DaemonBackend::resync() {
    auto* r = daemon_.replica();
    if (!r) return makeError(Errc::Refused, "resync is for slaves; this board is the master");
    POSSYNC_TRY(r->resync());
    return std::string("full sync requested");
}

Result<std::string> DaemonBackend::acceptGeneration() {
    auto* r = daemon_.replica();
    if (!r) return makeError(Errc::Refused, "accept-generation is for slaves; this board is the master");
    POSSYNC_TRY(r->acceptGeneration());
    return std::string("new master generation accepted: taking a FULL sync");
}

std::vector<std::string> DaemonBackend::discovery() {
    std::vector<std::string> lines;
    auto snapshot = [&](discovery::MasterFinder& f) {
        std::istringstream in(discovery::formatSnapshot(f.snapshot(), uv::Loop::wallMs()));
        for (std::string line; std::getline(in, line);) lines.push_back(line);
    };
    if (auto* f = daemon_.finder()) {
        snapshot(*f);
        return lines;
    }
    if (auto* a = daemon_.advertiser())
        lines.push_back("advertising: " + a->describe());
    else if (std::string why = daemon_.fencedReason(); !why.empty())
        lines.push_back("discovery: not advertised (fenced)");
    else
        lines.push_back("discovery: none (this master is not advertised; --discovery static)");
    // A master watches the LAN for a newer master of its store (fencing, DESIGN.md §10).
    if (auto* w = daemon_.watcher()) snapshot(*w);
    return lines;
}

Result<console::OutboxInfo> DaemonBackend::outbox() {
    if (daemon_.master())
        return makeError(Errc::Refused, "outbox is for slaves; this board is the master (see clients)");
    auto info = daemon_.store().outboxInfo();
    if (!info) return info.takeError();
    console::OutboxInfo o;
    o.count = info->count;
    o.bytes = info->bytes;
    o.limit = info->maxBytes;
    if (info->oldestId) o.oldestId = info->oldestId;
    o.oldestAgeMs = info->oldestAgeMs(uv::Loop::wallMs());
    o.held = info->held;
    o.nextRequest = info->nextRequest;
    o.lastRejection = info->lastRejection;
    return o;
}

Result<std::vector<console::ClientInfo>> DaemonBackend::clients() {
    auto list = daemon_.store().clients();
    if (!list) return list.takeError();
    std::vector<console::ClientInfo> out;
    out.reserve(list->size());
    for (const auto& c : *list) out.push_back({c.device, c.lastRequest, c.lastSeq, c.applied, c.rejected});
    return out;
}

void DaemonBackend::promote(bool confirmed, console::NoteDone done) {
    daemon_.promote(confirmed, std::move(done));
}

void DaemonBackend::rejoin(console::NoteDone done) {
    daemon_.rejoin(std::move(done));
}

Result<console::PairInfo> DaemonBackend::pairList() {
    return daemon_.pairList();
}

void DaemonBackend::pair(const std::string& verb, const std::string& arg, console::NoteDone done) {
    daemon_.pair(verb, arg, std::move(done));
}

}  // namespace possync::daemon
