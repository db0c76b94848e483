// possync-write-bench: what a write on a slave costs (issue 12, DESIGN.md §9), measured side by
// side in one run with a real master and slave possyncd on 127.0.0.1 (--sync yes, the default).
//
// Phases, in this order, on one pair of daemons:
//   rtt      a TCP round trip of 64 bytes on 127.0.0.1 (an echo thread in this process);
//   master   K single-put write transactions on the master's directory through the store's
//            single write entry point (Store::beginWrite, synced commit): each commit's latency;
//   apply    the same K log entries applied, one ApplyTxn each (apply + position + synced
//            commit), to a scratch slave directory in MDB_WRITEMAP mode like a slave's: the
//            latency of a slave's apply commit;
//   forward  K single-put transactions on the slave's directory (queued in its outbox), each
//            timed from beginWrite until requestState says it is applied on the slave (the way
//            possync_wait waits: inotify on DIR/possync.notify): read-your-writes latency;
//   local    N single-put synced transactions on the master's directory: its local write rate;
//   drain    the master stops (SIGTERM); N single-put requests are queued on the slave; the
//            master restarts on the same port; timed from its start until the slave's outbox is
//            empty (polled every 2 ms): the outbox drain rate.
// Ratios: forward / (master + apply + 2 rtt) at p50 and p99, and drain rate / local rate.
// At the end the slave must hold the master's position and `possync digest` of both must match,
// or the run fails. Results are printed as `RESULT name=... key=value ...` lines.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "base/bytes.h"
#include "base/host_port.h"

#include "child.h"
#include "latency.h"
#include "proc_stats.h"
#include "store/store.h"
#include "wire/change_model.h"
#include "wire/messages.h"

using namespace possync;
using namespace possync::bench;

namespace {

const char* kUsage = R"(possync-write-bench - slave writes (forwarded requests) against their parts

usage: possync-write-bench [--writes K] [--drain N] [--value-size B] [--short]
                           [--bin-dir DIR] [--work-dir DIR] [--timeout S] [--keep]

  --writes K       single-put transactions timed one by one: master commits, slave apply
                   commits, forwarded writes (default 500)
  --drain N        requests queued on the slave while the master is down, and master-local
                   transactions for the rate they are compared with (default 10000)
  --value-size B   value bytes per put (default 100)
  --short          K = 20 and N = 200 unless given explicitly (the 'bench-write-short' test)
  --bin-dir DIR    where possyncd and possync are (see possync-bench --help)
  --work-dir DIR   parent of the temporary data directories (default /var/tmp)
  --timeout S      deadline of each wait in seconds (default 600)
  --keep           keep the data directories and daemon logs
)";

constexpr const char* kTable = "bench";

struct Options {
    uint64_t writes = 500;
    uint64_t drain = 10000;
    uint64_t valueSize = 100;
    std::string binDir;
    std::string workDir = "/var/tmp";
    uint64_t timeoutS = 600;
    bool keep = false;
};

Status parseArgs(int argc, char** argv, Options& o, bool& help) {
    bool shortMode = false, writesSet = false, drainSet = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto number = [&](const char* name, uint64_t min) -> Result<uint64_t> {
            if (i + 1 >= argc) return makeError(Errc::InvalidArgument, std::string(name) + " needs a value");
            std::string v = argv[++i];
            auto n = parseU64(v);
            if (!n || *n < min)
                return makeError(Errc::InvalidArgument, std::string(name) + ": '" + v +
                                                            "' is not a number >= " + std::to_string(min));
            return *n;
        };
        Result<uint64_t> n = uint64_t(0);
        if (a == "--help" || a == "-h") {
            help = true;
        } else if (a == "--short") {
            shortMode = true;
        } else if (a == "--keep") {
            o.keep = true;
        } else if (a == "--writes") {
            if (!(n = number("--writes", 1))) return n.takeError();
            o.writes = *n;
            writesSet = true;
        } else if (a == "--drain") {
            if (!(n = number("--drain", 1))) return n.takeError();
            o.drain = *n;
            drainSet = true;
        } else if (a == "--value-size") {
            if (!(n = number("--value-size", 1))) return n.takeError();
            if (*n > 65536) return makeError(Errc::InvalidArgument, "--value-size is larger than 64 KiB");
            o.valueSize = *n;
        } else if (a == "--timeout") {
            if (!(n = number("--timeout", 1))) return n.takeError();
            o.timeoutS = *n;
        } else if (a == "--bin-dir" || a == "--work-dir") {
            if (i + 1 >= argc) return makeError(Errc::InvalidArgument, a + " needs a value");
            (a == "--bin-dir" ? o.binDir : o.workDir) = argv[++i];
        } else {
            return makeError(Errc::InvalidArgument, "unknown argument '" + a + "'");
        }
    }
    if (shortMode && !writesSet) o.writes = 20;
    if (shortMode && !drainSet) o.drain = 200;
    return {};
}

struct Results {
    std::vector<double> rtt, masterCommit, applyCommit, applyNoWm, forward, forwardQueue;
    double applyCpuS = 0, applyNoWmCpuS = 0;  // this process's CPU per apply transaction
    double localS = 0, queueS = 0, drainS = 0, drainConnectedS = -1;
    Sched drainMaster, drainSlave;  // CPU and run-queue wait of each daemon's main thread (schedstat)
    Sched localMaster, localSlave;  // the same during the local-rate phase
    std::string digest;
};

Sched minus(const Sched& a, const Sched& b) {
    if (a.cpuS < 0 || b.cpuS < 0) return {};
    return Sched{a.cpuS - b.cpuS, a.waitS - b.waitS};
}

class Bench final {
public:
    Bench(Options o, Binaries b, std::string dir)
        : o_(std::move(o)), bin_(std::move(b)), dir_(std::move(dir)) {
        value_.resize(o_.valueSize);
        for (size_t i = 0; i < value_.size(); ++i) value_[i] = uint8_t(i * 131 + 7);
    }

    Result<Results> run() {
        Results r;
        POSSYNC_TRY(startMaster("127.0.0.1:0"));
        std::vector<std::string> sargs = {
            bin_.possyncd, "--role", "slave", "--data", dir_ + "/slave", "--store", "bench", "--device",
            "bench-slave", "--master", masterAddress_, "--discovery", "static", "--log-level", "info",
            // A short reconnect delay: the drain is timed from the master's restart, and the
            // product's backoff (0.5 s doubling) would add up to its cap to that.
            "--backoff-min-ms", "20", "--backoff-max-ms", "100"};
        auto slave = Child::start(sargs, dir_ + "/slave.log");
        if (!slave) return slave.takeError();
        slave_ = std::move(*slave);
        auto synced = slave_->waitForLine("FULL sync complete", deadline());
        if (!synced) return synced.takeError();

        store::StoreOptions so;
        so.create = false;
        auto ms = store::Store::open(dir_ + "/master", so);
        if (!ms) return ms.takeError();
        auto ss = store::Store::open(dir_ + "/slave", so);
        if (!ss) return ss.takeError();
        store::Store& mstore = **ms;
        store::Store& sstore = **ss;

        // rtt
        auto rtt = measureRtt(std::max<uint64_t>(o_.writes, 200));
        if (!rtt) return rtt.takeError();
        r.rtt = std::move(*rtt);

        // master: K synced commits on the master's directory.
        auto before = mstore.meta();
        if (!before) return before.takeError();
        for (uint64_t i = 0; i < o_.writes; ++i) {
            auto t0 = Clock::now();
            POSSYNC_TRY(putOne(mstore, "m-", i));
            r.masterCommit.push_back(seconds(Clock::now() - t0));
        }
        auto after = mstore.meta();
        if (!after) return after.takeError();

        // apply: the same log entries, one apply transaction each, on a scratch slave.
        auto applied = applyLog(mstore, before->generation, before->seq, after->seq, true, r.applyCpuS);
        if (!applied) return applied.takeError();
        r.applyCommit = std::move(*applied);
        // The same without MDB_WRITEMAP, to show what that mode costs a small commit.
        applied = applyLog(mstore, before->generation, before->seq, after->seq, false, r.applyNoWmCpuS);
        if (!applied) return applied.takeError();
        r.applyNoWm = std::move(*applied);

        // forward: K writes on the slave, each until it is applied there.
        int ino = ::inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
        if (ino < 0) return makeError(Errc::Io, errnoText("inotify_init1"));
        if (::inotify_add_watch(ino, sstore.notifyPath().c_str(), IN_ATTRIB | IN_MODIFY) < 0) {
            ::close(ino);
            return makeError(Errc::Io, errnoText("inotify_add_watch " + sstore.notifyPath()));
        }
        Status fwd;
        for (uint64_t i = 0; i < o_.writes && fwd; ++i) {
            auto t0 = Clock::now();
            auto id = putOne(sstore, "f-", i);
            if (!id) {
                fwd = id.takeError();
                break;
            }
            auto t1 = Clock::now();
            fwd = waitApplied(sstore, *id, ino);
            r.forwardQueue.push_back(seconds(t1 - t0));
            r.forward.push_back(seconds(Clock::now() - t0));
        }
        if (!fwd) {
            ::close(ino);
            return fwd.takeError();
        }

        // local: N synced commits on the master (its daemon streams them to the slave).
        Sched m0 = readSched(master_->pid()), s0 = readSched(slave_->pid());
        auto t0 = Clock::now();
        for (uint64_t i = 0; i < o_.drain; ++i) POSSYNC_TRY(putOne(mstore, "l-", i));
        r.localS = seconds(Clock::now() - t0);
        r.localMaster = minus(readSched(master_->pid()), m0);
        r.localSlave = minus(readSched(slave_->pid()), s0);
        POSSYNC_TRY(waitCaughtUp(mstore, sstore));

        // drain: queue N on the slave with the master down, then restart it.
        POSSYNC_TRY(stopDaemon(*master_));
        t0 = Clock::now();
        uint64_t last = 0;
        for (uint64_t i = 0; i < o_.drain; ++i) {
            auto id = putOne(sstore, "d-", i);
            if (!id) {
                ::close(ino);
                return id.takeError();
            }
            last = *id;
        }
        r.queueS = seconds(Clock::now() - t0);
        auto queued = sstore.outboxInfo();
        if (!queued) return queued.takeError();
        if (queued->count != o_.drain) {
            ::close(ino);
            return makeError(Errc::Corrupt, "the slave's outbox holds " + std::to_string(queued->count) +
                                                " requests, not " + std::to_string(o_.drain));
        }
        slave_->drain();
        size_t from = slave_->lines().size();
        s0 = readSched(slave_->pid());
        t0 = Clock::now();
        POSSYNC_TRY(startMaster(masterAddress_));
        Status drained = makeError(Errc::Busy, "the slave's outbox did not drain before the deadline");
        for (auto end = deadline(); Clock::now() < end && !interrupted();) {
            auto info = sstore.outboxInfo();
            if (!info) return info.takeError();
            if (info->count == 0) {
                r.drainS = seconds(Clock::now() - t0);
                drained = {};
                break;
            }
            slave_->drain();
            master_->drain();
            ::poll(nullptr, 0, 2);
        }
        r.drainMaster = readSched(master_->pid());
        r.drainSlave = minus(readSched(slave_->pid()), s0);
        slave_->drain();
        long connected = slave_->findLine("connected to master", from);
        if (connected >= 0) r.drainConnectedS = seconds(slave_->lines()[size_t(connected)].at - t0);
        Status lastOk = drained ? waitApplied(sstore, last, ino) : Status{};
        ::close(ino);
        POSSYNC_TRY(drained);
        POSSYNC_TRY(lastOk);
        POSSYNC_TRY(waitCaughtUp(mstore, sstore));

        // Both daemons stop cleanly and hold the same data.
        POSSYNC_TRY(stopDaemon(*slave_));
        POSSYNC_TRY(stopDaemon(*master_));
        auto md =
            runTool({bin_.possync, "--data", dir_ + "/master", "digest"}, dir_ + "/digest.log", deadline());
        if (!md) return md.takeError();
        auto sd =
            runTool({bin_.possync, "--data", dir_ + "/slave", "digest"}, dir_ + "/digest.log", deadline());
        if (!sd) return sd.takeError();
        if (*md != *sd)
            return makeError(Errc::Corrupt, "slave digest differs from the master's: master '" + trim(*md) +
                                                "' slave '" + trim(*sd) + "'");
        uint64_t records = 2 * o_.writes + 2 * o_.drain;
        if (md->find(" count=" + std::to_string(records)) == std::string::npos)
            return makeError(Errc::Corrupt, "master digest does not count " + std::to_string(records) +
                                                " records: " + trim(*md));
        r.digest = trim(*md);
        return r;
    }

private:
    Clock::time_point deadline() const { return Clock::now() + std::chrono::seconds(o_.timeoutS); }

    static std::string trim(const std::string& s) {
        size_t e = s.find_last_not_of("\r\n ");
        return e == std::string::npos ? std::string() : s.substr(0, e + 1);
    }

    Status startMaster(const std::string& listen) {
        std::vector<std::string> margs = {
            bin_.possyncd, "--role", "master", "--data", dir_ + "/master", "--store", "bench", "--device",
            "bench-master", "--listen", listen, "--discovery", "static", "--tables", kTable, "--log-level",
            "info",
            // The benchmark's slaves pair on their first link (links are sealed, DESIGN.md §11).
            "--pair-window", "3600"};
        auto master = Child::start(margs, dir_ + "/master.log");
        if (!master) return master.takeError();
        master_ = std::move(*master);
        auto address = listeningAddress(*master_, deadline());
        if (!address) return address.takeError();
        masterAddress_ = std::move(*address);
        return {};
    }

    // One transaction with one put of key PREFIX + 8 digits; returns the request id (0 on the
    // master, where it applied at once).
    Result<uint64_t> putOne(store::Store& s, const char* prefix, uint64_t i) {
        char key[32];
        int n = std::snprintf(key, sizeof key, "%s%08" PRIu64, prefix, i);
        auto txn = s.beginWrite();
        if (!txn) return txn.takeError();
        POSSYNC_TRY(txn->put(kTable, Bytes(reinterpret_cast<const uint8_t*>(key), size_t(n)),
                             Bytes(value_.data(), value_.size())));
        auto c = txn->commitWrite();
        if (!c) return c.takeError();
        return c->request;
    }

    // Waits as possync_wait does: requestState, re-checked when the daemon touches the notify
    // file (inotify `ino`) and at least every 100 ms.
    Status waitApplied(store::Store& s, uint64_t id, int ino) {
        for (auto end = deadline();;) {
            auto st = s.requestState(id);
            if (!st) return st.takeError();
            if (st->kind == store::RequestState::Committed) return {};
            if (st->kind != store::RequestState::Pending)
                return makeError(Errc::Rejected, "request " + std::to_string(id) + ": " + st->reason);
            if (Clock::now() >= end || interrupted())
                return makeError(Errc::Busy, "request " + std::to_string(id) + " was not applied in time");
            pollfd p{ino, POLLIN, 0};
            if (::poll(&p, 1, 100) > 0) {
                char buf[4096];
                while (::read(ino, buf, sizeof buf) > 0) {
                }
            }
        }
    }

    // Until the slave holds the master's head (bounded).
    Status waitCaughtUp(store::Store& m, store::Store& s) {
        auto head = m.meta();
        if (!head) return head.takeError();
        for (auto end = deadline(); Clock::now() < end && !interrupted(); ::poll(nullptr, 0, 5)) {
            auto pos = s.meta();
            if (!pos) return pos.takeError();
            if (pos->seq >= head->seq) return {};
            slave_->drain();
            if (master_->running()) master_->drain();
        }
        return makeError(Errc::Busy, "the slave did not reach the master's seq " + std::to_string(head->seq));
    }

    // Applies the master's log entries (from, to] to a new slave directory, one apply transaction
    // (apply + position + synced commit) per entry, as a slave does for a change that arrives
    // alone, with or without MDB_WRITEMAP. Returns each transaction's latency; `cpuS` gets the
    // CPU time per transaction.
    Result<std::vector<double>> applyLog(store::Store& m, uint64_t generation, uint64_t from, uint64_t to,
                                         bool writeMap, double& cpuS) {
        std::vector<std::pair<uint64_t, std::string>> entries;
        POSSYNC_TRY(m.readLog(from + 1, size_t(to - from), size_t(1) << 30, [&](uint64_t seq, Bytes frame) {
            if (seq > to) return false;
            entries.emplace_back(seq, frame.str());
            return true;
        }));
        if (entries.size() != to - from)
            return makeError(Errc::Corrupt, "the master's log holds " + std::to_string(entries.size()) +
                                                " entries after seq " + std::to_string(from) + ", not " +
                                                std::to_string(to - from));
        store::StoreOptions ao;
        ao.writeMap = writeMap;  // true: as possyncd opens a slave
        auto opened = store::Store::open(dir_ + (writeMap ? "/apply" : "/apply-nowritemap"), ao);
        if (!opened) return opened.takeError();
        store::Store& a = **opened;
        POSSYNC_TRY(a.setRole(store::Role::Slave));
        {
            auto txn = a.beginApply();
            if (!txn) return txn.takeError();
            POSSYNC_TRY(txn->beginFull({kTable}));
            POSSYNC_TRY(txn->setPosition(generation, from));
            POSSYNC_TRY(txn->commit());
        }
        std::vector<double> latency;
        const Sched c0 = readSched(::getpid());
        for (const auto& [seq, bytes] : entries) {
            auto frame = wire::verifyFrame(Bytes(bytes));
            if (!frame) return frame.takeError();
            const wire::ChangeModel* cm = wire::asChangeModel(*frame);
            if (!cm)
                return makeError(Errc::Corrupt, "log entry " + std::to_string(seq) + " is no change model");
            auto t0 = Clock::now();
            auto txn = a.beginApply();
            if (!txn) return txn.takeError();
            POSSYNC_TRY(txn->apply(cm));
            POSSYNC_TRY(txn->setPosition(generation, seq));
            POSSYNC_TRY(txn->commit());
            latency.push_back(seconds(Clock::now() - t0));
        }
        cpuS = (readSched(::getpid()).cpuS - c0.cpuS) / double(entries.size());
        return latency;
    }

    Options o_;
    Binaries bin_;
    std::string dir_;
    std::vector<uint8_t> value_;
    std::unique_ptr<Child> master_, slave_;
    std::string masterAddress_;
};

void printResults(const Options& o, const Results& r) {
    Percentiles rtt = percentiles(r.rtt), mc = percentiles(r.masterCommit), ac = percentiles(r.applyCommit);
    Percentiles fw = percentiles(r.forward), fq = percentiles(r.forwardQueue);
    double base50 = mc.p50 + ac.p50 + 2 * rtt.p50;
    double base99 = mc.p99 + ac.p99 + 2 * rtt.p99;
    double localRate = double(o.drain) / r.localS, drainRate = double(o.drain) / r.drainS;
    double drainLinked = r.drainConnectedS >= 0 ? double(o.drain) / (r.drainS - r.drainConnectedS) : 0;
    printf("\nslave writes, %" PRIu64 " timed single-put transactions, %" PRIu64
           " drained, values of %" PRIu64 " B\n",
           o.writes, o.drain, o.valueSize);
    printf("  %-44s %9s %9s %9s\n", "latency (ms)", "p50", "p99", "max");
    auto row = [](const char* name, const Percentiles& p) {
        printf("  %-44s %9.3f %9.3f %9.3f\n", name, p.p50, p.p99, p.max);
    };
    row("rtt: TCP echo on 127.0.0.1", rtt);
    row("master: local synced commit", mc);
    row("apply: slave apply commit (scratch dir)", ac);
    row("  the same without MDB_WRITEMAP", percentiles(r.applyNoWm));
    printf("  apply CPU per commit: %.3f ms with MDB_WRITEMAP, %.3f ms without\n", r.applyCpuS * 1e3,
           r.applyNoWmCpuS * 1e3);
    row("forward: slave write -> applied on the slave", fw);
    row("  of which queueing in the outbox (commit)", fq);
    printf("  base = master + apply + 2 rtt: p50 %.3f ms, p99 %.3f ms\n", base50, base99);
    printf("  ratio forward / base: p50 %.2f, p99 %.2f (goal <= 1.3)\n", fw.p50 / base50, fw.p99 / base99);
    printf(
        "  master local rate: %.0f txn/s (%.3f s); outbox drain: %.0f requests/s (%.3f s, link up after "
        "%.3f s); ratio %.2f (goal >= 0.7)\n",
        localRate, r.localS, drainRate, r.drainS, r.drainConnectedS, drainRate / localRate);
    printf("  queueing %" PRIu64 " requests on the slave with the master down: %.3f s (%.0f/s)\n", o.drain,
           r.queueS, double(o.drain) / r.queueS);
    printf(
        "  main-thread CPU / run-queue wait (s): local: master %.3f/%.3f slave %.3f/%.3f; drain: master "
        "%.3f/%.3f "
        "slave %.3f/%.3f\n",
        r.localMaster.cpuS, r.localMaster.waitS, r.localSlave.cpuS, r.localSlave.waitS, r.drainMaster.cpuS,
        r.drainMaster.waitS, r.drainSlave.cpuS, r.drainSlave.waitS);
    printf("  final digest (both boards): %s\n", r.digest.c_str());
    printf("RESULT name=forward_latency writes=%" PRIu64
           " rtt_p50_ms=%.3f rtt_p99_ms=%.3f master_commit_p50_ms=%.3f master_commit_p99_ms=%.3f "
           "apply_commit_p50_ms=%.3f apply_commit_p99_ms=%.3f forward_p50_ms=%.3f forward_p99_ms=%.3f "
           "forward_queue_p50_ms=%.3f apply_nowritemap_p50_ms=%.3f apply_cpu_ms=%.3f "
           "apply_nowritemap_cpu_ms=%.3f "
           "base_p50_ms=%.3f base_p99_ms=%.3f ratio_p50=%.2f ratio_p99=%.2f\n",
           o.writes, rtt.p50, rtt.p99, mc.p50, mc.p99, ac.p50, ac.p99, fw.p50, fw.p99, fq.p50,
           percentiles(r.applyNoWm).p50, r.applyCpuS * 1e3, r.applyNoWmCpuS * 1e3, base50, base99,
           fw.p50 / base50, fw.p99 / base99);
    printf("RESULT name=outbox_drain requests=%" PRIu64
           " local_s=%.3f local_per_s=%.0f drain_s=%.3f drain_per_s=%.0f connected_s=%.3f "
           "drain_linked_per_s=%.0f ratio=%.2f queue_s=%.3f master_cpu_s=%.3f slave_cpu_s=%.3f "
           "local_master_cpu_s=%.3f local_slave_cpu_s=%.3f\n",
           o.drain, r.localS, localRate, r.drainS, drainRate, r.drainConnectedS, drainLinked,
           drainRate / localRate, r.queueS, r.drainMaster.cpuS, r.drainSlave.cpuS, r.localMaster.cpuS,
           r.localSlave.cpuS);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool help = false;
    auto parsed = parseArgs(argc, argv, o, help);
    if (!parsed) {
        fprintf(stderr, "possync-write-bench: %s\n%s", parsed.error().message.c_str(), kUsage);
        return 2;
    }
    if (help) {
        fputs(kUsage, stdout);
        return 0;
    }
    auto bin = findBinaries(o.binDir);
    if (!bin) {
        fprintf(stderr, "possync-write-bench: %s\n", bin.error().message.c_str());
        return 2;
    }
    catchInterrupts();
    std::string tmpl = o.workDir + "/possync-write-bench.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) {
        fprintf(stderr, "possync-write-bench: mkdtemp %s: %s\n", tmpl.c_str(), std::strerror(errno));
        return 1;
    }
    std::string dir = buf.data();
    printf("bench: work directory %s\n", dir.c_str());
    fflush(stdout);
    Result<Results> r = Results{};
    {
        Bench bench(o, *bin, dir);
        r = bench.run();
    }  // the daemons are gone (killed if still running) before the directory is
    if (!r) {
        fprintf(stderr, "possync-write-bench: %s (kept %s)\n", r.error().message.c_str(), dir.c_str());
        return 1;
    }
    printResults(o, *r);
    std::error_code ec;
    if (!o.keep) std::filesystem::remove_all(dir, ec);
    return 0;
}
