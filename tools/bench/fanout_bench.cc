// possync-fanout-bench: what one master costs per slave (issue 15: fan-out), with real daemons on
// 127.0.0.1, 1 slave and N slaves side by side in one run.
//
// For each slave count (1, then N), on fresh data directories:
//   1. the master's directory is bulk-loaded with `possync load` (R records, not timed) and the
//      master possyncd starts (--sync yes, the default; slaves pair through --pair-window);
//   2. FULL: every slave possyncd starts at once with an empty directory; timed until the last
//      one logs "FULL sync complete". The master's CPU time over that span (all its threads,
//      /proc/PID/task/*/schedstat) is what the FULL syncs cost it;
//   3. INCREMENTAL: K changes, one put per synced transaction on the master's directory (this
//      process writes through the store, as a POS application does); after each, the wait until
//      every slave's data holds it (its position read from its directory, polled every 0.5 ms).
//      Reported: write -> readable on the slowest slave (p50, p99, max), and the master's and the
//      slaves' CPU microseconds per change;
//   4. every daemon gets SIGTERM (each must exit 0) and every slave's `possync digest` must equal
//      the master's.
// The ratios N/1 are taken within the run, so both see the same machine. It asserts no timing.
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/host_port.h"

#include "child.h"
#include "latency.h"
#include "proc_stats.h"
#include "store/store.h"

using namespace possync;
using namespace possync::bench;

namespace {

const char* kUsage = R"(possync-fanout-bench - one master's cost per slave: 1 slave and N slaves in one run

usage: possync-fanout-bench [--slaves N] [--changes K] [--records R] [--value-size B] [--short]
                            [--bin-dir DIR] [--work-dir DIR] [--timeout S] [--keep]

  --slaves N       the larger slave count (default 10; the smaller is 1)
  --changes K      single-put transactions on the master, each waited for on every slave
                   (default 1000)
  --records R      records of the data set the FULL syncs copy (default 100000)
  --value-size B   value bytes per record and change; keys are 16 bytes (default 100)
  --short          N = 3, K = 50, R = 2000 unless given (the 'bench-fanout-short' test)
  --bin-dir DIR    where possyncd and possync are (see possync-bench --help)
  --work-dir DIR   parent of the temporary data directories (default /var/tmp)
  --timeout S      deadline of each wait in seconds (default 600)
  --keep           keep the data directories and daemon logs
)";

constexpr const char* kTable = "bench";

struct Options {
    uint64_t slaves = 10, changes = 1000, records = 100000, valueSize = 100, timeoutS = 600;
    std::string binDir, workDir = "/var/tmp";
    bool keep = false;
};

Status parseArgs(int argc, char** argv, Options& o, bool& help) {
    bool shortMode = false, slavesSet = false, changesSet = false, recordsSet = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto number = [&](uint64_t min, uint64_t max) -> Result<uint64_t> {
            if (i + 1 >= argc) return makeError(Errc::InvalidArgument, a + " needs a value");
            auto n = parseU64(argv[++i]);
            if (!n || *n < min || *n > max)
                return makeError(Errc::InvalidArgument, a + " needs a number from " + std::to_string(min) +
                                                            " to " + std::to_string(max) + ", not '" +
                                                            argv[i] + "'");
            return *n;
        };
        Result<uint64_t> n = uint64_t(0);
        if (a == "--help" || a == "-h") {
            help = true;
        } else if (a == "--short") {
            shortMode = true;
        } else if (a == "--keep") {
            o.keep = true;
        } else if (a == "--slaves") {
            if (!(n = number(2, 64))) return n.takeError();
            o.slaves = *n;
            slavesSet = true;
        } else if (a == "--changes") {
            if (!(n = number(1, 10000000))) return n.takeError();
            o.changes = *n;
            changesSet = true;
        } else if (a == "--records") {
            if (!(n = number(1, 100000000))) return n.takeError();
            o.records = *n;
            recordsSet = true;
        } else if (a == "--value-size") {
            if (!(n = number(1, 65536))) return n.takeError();
            o.valueSize = *n;
        } else if (a == "--timeout") {
            if (!(n = number(1, 86400))) return n.takeError();
            o.timeoutS = *n;
        } else if (a == "--bin-dir" || a == "--work-dir") {
            if (i + 1 >= argc) return makeError(Errc::InvalidArgument, a + " needs a value");
            (a == "--bin-dir" ? o.binDir : o.workDir) = argv[++i];
        } else {
            return makeError(Errc::InvalidArgument, "unknown argument '" + a + "'");
        }
    }
    if (shortMode && !slavesSet) o.slaves = 3;
    if (shortMode && !changesSet) o.changes = 50;
    if (shortMode && !recordsSet) o.records = 2000;
    return {};
}

// What one slave count measured.
struct Run {
    uint64_t slaves = 0;
    double fullWallS = 0, fullMasterCpuS = 0;
    std::vector<double> slowest;  // write -> readable on the slowest slave, per change (seconds)
    double masterCpuPerChangeUs = 0, slaveCpuPerChangeUs = 0;  // slaves: the mean of them
};

class Bench final {
public:
    Bench(Options o, Binaries b) : o_(std::move(o)), bin_(std::move(b)) {
        value_.resize(o_.valueSize);
        for (size_t i = 0; i < value_.size(); ++i) value_[i] = uint8_t(i * 131 + 7);
    }

    Result<Run> run(const std::string& dir, uint64_t slaves) {
        Run r;
        r.slaves = slaves;
        auto loaded =
            runTool({bin_.possync, "--data", dir + "/master", "load", "--records", std::to_string(o_.records),
                     "--value-size", std::to_string(o_.valueSize), "--table", kTable},
                    dir + "/load.log", deadline());
        if (!loaded) return loaded.takeError();
        POSSYNC_TRY(startMaster(dir));

        // FULL: all slaves at once.
        double m0 = readCpuAllThreads(master_->pid());
        auto t0 = Clock::now();
        for (uint64_t i = 0; i < slaves; ++i) {
            std::string sd = dir + "/slave" + std::to_string(i);
            auto s = Child::start({bin_.possyncd, "--role", "slave", "--data", sd, "--store", "bench",
                                   "--device", "bench-slave-" + std::to_string(i), "--master", masterAddress_,
                                   "--discovery", "static", "--log-level", "info"},
                                  sd + ".log");
            if (!s) return s.takeError();
            slaves_.push_back(std::move(*s));
        }
        for (auto& s : slaves_) {
            auto done = s->waitForLine("FULL sync complete", deadline(), [&] { master_->drain(); });
            if (!done) return done.takeError();
        }
        r.fullWallS = seconds(Clock::now() - t0);
        r.fullMasterCpuS = readCpuAllThreads(master_->pid()) - m0;

        // INCREMENTAL: K single-put transactions, each until the slowest slave holds it.
        store::StoreOptions so;
        so.create = false;
        auto ms = store::Store::open(dir + "/master", so);
        if (!ms) return ms.takeError();
        std::vector<std::unique_ptr<store::Store>> ss;
        for (uint64_t i = 0; i < slaves; ++i) {
            auto s = store::Store::open(dir + "/slave" + std::to_string(i), so);
            if (!s) return s.takeError();
            ss.push_back(std::move(*s));
        }
        POSSYNC_TRY(changes(**ms, ss, r));

        // Every daemon stops cleanly; every slave holds the master's data.
        for (auto& s : slaves_) POSSYNC_TRY(stopDaemon(*s));
        POSSYNC_TRY(stopDaemon(*master_));
        auto md =
            runTool({bin_.possync, "--data", dir + "/master", "digest"}, dir + "/digest.log", deadline());
        if (!md) return md.takeError();
        for (uint64_t i = 0; i < slaves; ++i) {
            auto sd = runTool({bin_.possync, "--data", dir + "/slave" + std::to_string(i), "digest"},
                              dir + "/digest.log", deadline());
            if (!sd) return sd.takeError();
            if (*sd != *md)
                return makeError(Errc::Corrupt, "slave " + std::to_string(i) +
                                                    "'s digest differs from the master's: " + *sd + " vs " +
                                                    *md);
        }
        slaves_.clear();
        master_.reset();
        return r;
    }

private:
    Clock::time_point deadline() const { return Clock::now() + std::chrono::seconds(o_.timeoutS); }

    Status changes(store::Store& m, std::vector<std::unique_ptr<store::Store>>& ss, Run& r) {
        double m0 = readCpuAllThreads(master_->pid());
        std::vector<double> s0;
        for (auto& s : slaves_) s0.push_back(readCpuAllThreads(s->pid()));
        for (uint64_t k = 0; k < o_.changes; ++k) {
            char key[32];
            int n = std::snprintf(key, sizeof key, "fan-%012" PRIu64, k);
            auto t0 = Clock::now();
            auto txn = m.beginWrite();
            if (!txn) return txn.takeError();
            POSSYNC_TRY(txn->put(kTable, Bytes(reinterpret_cast<const uint8_t*>(key), size_t(n)),
                                 Bytes(value_.data(), value_.size())));
            auto c = txn->commitWrite();
            if (!c) return c.takeError();
            POSSYNC_TRY(waitAll(ss, c->seq));
            r.slowest.push_back(seconds(Clock::now() - t0));
        }
        r.masterCpuPerChangeUs = (readCpuAllThreads(master_->pid()) - m0) / double(o_.changes) * 1e6;
        double slaveSum = 0;
        for (size_t i = 0; i < slaves_.size(); ++i) slaveSum += readCpuAllThreads(slaves_[i]->pid()) - s0[i];
        r.slaveCpuPerChangeUs = slaveSum / double(slaves_.size()) / double(o_.changes) * 1e6;
        return {};
    }

    // Until every slave's position is at least `seq`. A slave touches no notify file for the
    // master's changes (only for its own settled requests), so this polls the position of the
    // first slave still behind every 0.5 ms (resolution about 0.5 ms).
    Status waitAll(std::vector<std::unique_ptr<store::Store>>& ss, uint64_t seq) {
        size_t behind = 0;  // slaves before this index hold seq already
        auto end = deadline();
        for (uint64_t round = 0; Clock::now() < end && !interrupted(); ++round) {
            while (behind < ss.size()) {
                auto pos = ss[behind]->meta();
                if (!pos) return pos.takeError();
                if (pos->seq < seq) break;
                ++behind;
            }
            if (behind == ss.size()) return {};
            ::usleep(500);
            if (round % 200 == 199) {  // keep the daemons' pipes drained
                master_->drain();
                for (auto& s : slaves_) s->drain();
            }
        }
        return makeError(Errc::Busy,
                         "slave " + std::to_string(behind) + " did not reach seq " + std::to_string(seq));
    }

    Status startMaster(const std::string& dir) {
        auto master = Child::start({bin_.possyncd, "--role", "master", "--data", dir + "/master", "--store",
                                    "bench", "--device", "bench-master", "--listen", "127.0.0.1:0",
                                    "--discovery", "static", "--tables", kTable, "--log-level", "info",
                                    // The slaves pair on their first link (sealed links, DESIGN.md §11).
                                    "--pair-window", "3600"},
                                   dir + "/master.log");
        if (!master) return master.takeError();
        master_ = std::move(*master);
        auto address = listeningAddress(*master_, deadline());
        if (!address) return address.takeError();
        masterAddress_ = std::move(*address);
        return {};
    }

    Options o_;
    Binaries bin_;
    std::vector<uint8_t> value_;
    std::unique_ptr<Child> master_;
    std::vector<std::unique_ptr<Child>> slaves_;
    std::string masterAddress_;
};

void printRun(const Run& r) {
    Percentiles p = percentiles(r.slowest);
    printf("  %2" PRIu64
           " slave(s): FULL %.2f s wall, master CPU %.3f s; per change: master %.0f us CPU, "
           "each slave %.0f us CPU; write -> readable on the slowest slave p50 %.3f ms p99 %.3f ms max %.3f "
           "ms\n",
           r.slaves, r.fullWallS, r.fullMasterCpuS, r.masterCpuPerChangeUs, r.slaveCpuPerChangeUs, p.p50,
           p.p99, p.max);
    printf(
        "RESULT name=fanout slaves=%" PRIu64
        " full_wall_s=%.3f full_master_cpu_s=%.4f "
        "master_cpu_us_per_change=%.1f slave_cpu_us_per_change=%.1f slowest_p50_ms=%.3f slowest_p99_ms=%.3f "
        "slowest_max_ms=%.3f\n",
        r.slaves, r.fullWallS, r.fullMasterCpuS, r.masterCpuPerChangeUs, r.slaveCpuPerChangeUs, p.p50, p.p99,
        p.max);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool help = false;
    if (auto st = parseArgs(argc, argv, o, help); !st) {
        fprintf(stderr, "possync-fanout-bench: %s\n%s", st.error().message.c_str(), kUsage);
        return 2;
    }
    if (help) {
        fputs(kUsage, stdout);
        return 0;
    }
    catchInterrupts();
    auto bin = findBinaries(o.binDir);
    if (!bin) {
        fprintf(stderr, "possync-fanout-bench: %s\n", bin.error().message.c_str());
        return 1;
    }
    std::string tmpl = o.workDir + "/possync-fanout-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
        fprintf(stderr, "possync-fanout-bench: cannot create a directory in %s\n", o.workDir.c_str());
        return 1;
    }
    const std::string work = tmpl;
    printf("fanout: %" PRIu64 " records and %" PRIu64 " changes of 16+%" PRIu64 " bytes, 1 and %" PRIu64
           " slaves, possyncd %s, work dir %s\n",
           o.records, o.changes, o.valueSize, o.slaves, bin->possyncd.c_str(), work.c_str());
    Bench bench(o, *bin);
    std::vector<Run> runs;
    int rc = 0;
    for (uint64_t n : {uint64_t(1), o.slaves}) {
        std::string dir = work + "/slaves-" + std::to_string(n);
        std::filesystem::create_directories(dir);
        auto r = bench.run(dir, n);
        if (!r) {
            fprintf(stderr, "possync-fanout-bench: %" PRIu64 " slave(s): %s\n", n, r.error().message.c_str());
            rc = 1;
            break;
        }
        printRun(*r);
        runs.push_back(std::move(*r));
    }
    if (rc == 0 && runs.size() == 2) {
        const Run &one = runs[0], &many = runs[1];
        printf("RESULT name=fanout_ratio slaves=%" PRIu64
               " master_cpu_per_change_ratio=%.2f full_master_cpu_ratio=%.2f "
               "full_wall_ratio=%.2f\n",
               many.slaves, many.masterCpuPerChangeUs / one.masterCpuPerChangeUs,
               many.fullMasterCpuS / one.fullMasterCpuS, many.fullWallS / one.fullWallS);
    }
    if (!o.keep) std::filesystem::remove_all(work);
    return rc;
}
