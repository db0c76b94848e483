// possync-bench: how long a FULL sync of N records takes with real daemons on 127.0.0.1,
// against the limit of appending the same records straight into LMDB (issue 3).
//
// One repetition:
//   1. a fresh master data directory is bulk-loaded with `possync load` (not timed);
//   2. the master possyncd starts on 127.0.0.1, port from the kernel (read from its log);
//   3. timed: the slave possyncd starts with an empty data directory -> the moment it logs
//      "FULL sync complete" (the data set applied in one LMDB transaction and committed with
//      fsync). Peak RSS (VmHWM) and CPU time of both daemons are read at that moment;
//   4. both daemons get SIGTERM (each must exit 0) and `possync digest` of the slave must equal
//      the master's, or the run fails;
//   5. timed in-process: the limit (limit.h) into a fresh environment next to the others.
// The ratio sync/limit is taken within each repetition, so both see the same disk and cache
// state. Results are printed as `RESULT name=... key=value ...` lines.
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/host_port.h"

#include "child.h"
#include "limit.h"
#include "proc_stats.h"

using namespace possync;
using namespace possync::bench;

namespace {

const char* kUsage = R"(possync-bench - time a FULL sync between two real possyncd on 127.0.0.1

usage: possync-bench [--records N] [--value-size B] [--reps R] [--short]
                     [--bin-dir DIR] [--work-dir DIR] [--timeout S] [--keep]

  --records N      records in the data set (default 1000000)
  --value-size B   value bytes per record; keys are 16 bytes (default 100)
  --reps R         repetitions (default 3)
  --short          N = 20000 and 1 repetition unless given explicitly (the 'bench' test)
  --bin-dir DIR    where possyncd and possync are: a directory holding both, or a build
                   directory (firmware/daemon/possyncd, tools/possync/possync); default: the
                   build directory this program was built in
  --work-dir DIR   parent of the temporary data directories (default /var/tmp); put it on
                   the disk you want to measure, not on tmpfs
  --timeout S      deadline of each wait (load, start, sync, stop) in seconds (default 600)
  --keep           keep the data directories and daemon logs
)";

struct Options {
    uint64_t records = 1000000;
    uint64_t valueSize = 100;
    uint64_t reps = 3;
    std::string binDir;
    std::string workDir = "/var/tmp";
    uint64_t timeoutS = 600;
    bool keep = false;
};

// What one repetition measured.
struct Rep {
    double syncS = 0;     // slave start -> "FULL sync complete" read from its output
    double connectS = 0;  // slave start -> "connected to master"
    double sentS = 0;     // slave start -> master's "snapshot sent" (-1 when not seen)
    double limitS = 0;
    double limitCommitS = 0;
    Sched master, slave;      // CPU and run-queue wait of each daemon until the sync completed
    Sched limit;              // the same for the limit (this process, during runLimit)
    Rss masterRss, slaveRss;  // VmHWM at completion; anonKb = largest RssAnon sampled
    uint64_t chunks = 0;
    std::string digest;
};

struct Summary {
    double median = 0, min = 0, max = 0;
};

Summary summarize(std::vector<double> v) {
    Summary s;
    if (v.empty()) return s;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    s.min = v.front();
    s.max = v.back();
    return s;
}

Status parseArgs(int argc, char** argv, Options& o, bool& help) {
    bool shortMode = false, recordsSet = false, repsSet = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&](const char* name) -> Result<std::string> {
            if (i + 1 >= argc) return makeError(Errc::InvalidArgument, std::string(name) + " needs a value");
            return std::string(argv[++i]);
        };
        auto number = [&](const char* name, uint64_t min) -> Result<uint64_t> {
            auto v = value(name);
            if (!v) return v.takeError();
            auto n = parseU64(*v);
            if (!n || *n < min)
                return makeError(Errc::InvalidArgument, std::string(name) + ": '" + *v +
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
        } else if (a == "--records") {
            if (!(n = number("--records", 1))) return n.takeError();
            o.records = *n;
            recordsSet = true;
        } else if (a == "--value-size") {
            if (!(n = number("--value-size", 0))) return n.takeError();
            if (*n > (64u << 20))
                return makeError(Errc::InvalidArgument, "--value-size is larger than 64 MiB");
            o.valueSize = *n;
        } else if (a == "--reps") {
            if (!(n = number("--reps", 1))) return n.takeError();
            o.reps = *n;
            repsSet = true;
        } else if (a == "--timeout") {
            if (!(n = number("--timeout", 1))) return n.takeError();
            o.timeoutS = *n;
        } else if (a == "--bin-dir" || a == "--work-dir") {
            auto v = value(a.c_str());
            if (!v) return v.takeError();
            (a == "--bin-dir" ? o.binDir : o.workDir) = *v;
        } else {
            return makeError(Errc::InvalidArgument, "unknown argument '" + a + "'");
        }
    }
    if (shortMode && !recordsSet) o.records = 20000;
    if (shortMode && !repsSet) o.reps = 1;
    return {};
}

double since(Clock::time_point t0, Clock::time_point t) {
    return std::chrono::duration<double>(t - t0).count();
}

class Bench final {
public:
    Bench(Options o, Binaries b, std::string work)
        : o_(std::move(o)), bin_(std::move(b)), work_(std::move(work)) {
        // Generous maps: the data set, LMDB's page overhead and a change log of the same size.
        uint64_t est = o_.records * (o_.valueSize + 16 + 32);
        uint64_t mib = (3 * est >> 20) + 64;
        if (mib > 1024) mapMiB_ = mib;
        limitMapBytes_ = size_t(std::max<uint64_t>(mib, 1024)) << 20;
    }

    Status prepare() {
        values_ = pregenerateValues(o_.records, o_.valueSize, uint64_t(1) << 30);
        if (values_.empty() && o_.records * o_.valueSize > 0)
            printf("bench: more than 1 GiB of values: the limit generates them inside its timed loop\n");
        return {};
    }

    Result<Rep> run(uint64_t k) {
        std::string dir = work_ + "/rep" + std::to_string(k);
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec) return makeError(Errc::Io, "cannot create " + dir + ": " + ec.message());
        auto rep = runIn(dir);
        if (rep && !o_.keep) std::filesystem::remove_all(dir, ec);  // a failed one stays for its logs
        return rep;
    }

private:
    Clock::time_point deadline() const { return Clock::now() + std::chrono::seconds(o_.timeoutS); }

    std::vector<std::string> mapArgs() const {
        if (!mapMiB_) return {};
        return {"--map-size", std::to_string(mapMiB_)};
    }

    Result<Rep> runIn(const std::string& dir) {
        Rep rep;
        const auto ma = mapArgs();
        std::vector<std::string> load = {bin_.possync,    "--data",
                                         dir + "/master", "load",
                                         "--records",     std::to_string(o_.records),
                                         "--value-size",  std::to_string(o_.valueSize),
                                         "--table",       "bench"};
        load.insert(load.begin() + 3, ma.begin(), ma.end());  // --map-size goes before the command
        auto loaded = runTool(load, dir + "/load.log", deadline());
        if (!loaded) return loaded.takeError();

        std::vector<std::string> margs = {
            bin_.possyncd, "--role", "master", "--data", dir + "/master", "--store", "bench", "--device",
            "bench-master", "--listen", "127.0.0.1:0", "--discovery", "static", "--tables", "bench",
            "--log-level", "info",
            // The benchmark's slaves pair on their first link (links are sealed, DESIGN.md §11).
            "--pair-window", "3600"};
        margs.insert(margs.end(), ma.begin(), ma.end());
        auto master = Child::start(margs, dir + "/master.log");
        if (!master) return master.takeError();
        Child& m = **master;
        auto address = listeningAddress(m, deadline());
        if (!address) return address.takeError();
        const std::string masterAddress = *address;

        std::vector<std::string> sargs = {bin_.possyncd,  "--role",      "slave",       "--data",
                                          dir + "/slave", "--store",     "bench",       "--device",
                                          "bench-slave",  "--master",    masterAddress, "--discovery",
                                          "static",       "--log-level", "info"};
        sargs.insert(sargs.end(), ma.begin(), ma.end());
        size_t masterFrom = m.lines().size();
        auto t0 = Clock::now();
        auto slave = Child::start(sargs, dir + "/slave.log");
        if (!slave) return slave.takeError();
        Child& s = **slave;
        auto sample = [&] {
            m.drain();
            rep.masterRss.anonKb = std::max(rep.masterRss.anonKb, readRss(m.pid()).anonKb);
            rep.slaveRss.anonKb = std::max(rep.slaveRss.anonKb, readRss(s.pid()).anonKb);
        };
        auto done = s.waitForLine("FULL sync complete", deadline(), sample);
        if (!done) return done.takeError();
        rep.syncS = since(t0, s.lines()[*done].at);
        rep.masterRss.hwmKb = readRss(m.pid()).hwmKb;
        rep.slaveRss.hwmKb = readRss(s.pid()).hwmKb;
        rep.master = readSched(m.pid());
        rep.slave = readSched(s.pid());
        m.drain();
        const std::string& dl = s.lines()[*done].text;
        size_t c = dl.find("complete: ");
        if (c != std::string::npos) rep.chunks = std::strtoull(dl.c_str() + c + 10, nullptr, 10);
        long connected = s.findLine("connected to master");
        rep.connectS = connected >= 0 ? since(t0, s.lines()[size_t(connected)].at) : -1;
        long sent = m.findLine("snapshot sent", masterFrom);
        rep.sentS = sent >= 0 ? since(t0, m.lines()[size_t(sent)].at) : -1;

        for (auto* child : {&s, &m}) POSSYNC_TRY(stopDaemon(*child));
        auto md =
            runTool({bin_.possync, "--data", dir + "/master", "digest"}, dir + "/digest.log", deadline());
        if (!md) return md.takeError();
        auto sd =
            runTool({bin_.possync, "--data", dir + "/slave", "digest"}, dir + "/digest.log", deadline());
        if (!sd) return sd.takeError();
        if (*md != *sd)
            return makeError(Errc::Corrupt, "slave digest differs from the master's: master '" + trim(*md) +
                                                "' slave '" + trim(*sd) + "'");
        if (md->find(" count=" + std::to_string(o_.records)) == std::string::npos)
            return makeError(Errc::Corrupt, "master digest does not count " + std::to_string(o_.records) +
                                                " records: " + trim(*md));
        rep.digest = trim(*md);

        auto limit = runLimit(dir + "/limit", o_.records, o_.valueSize, values_, limitMapBytes_);
        if (!limit) return limit.takeError();
        rep.limit = limit->sched;
        rep.limitS = limit->seconds;
        rep.limitCommitS = limit->commitSeconds;
        return rep;
    }

    static std::string trim(const std::string& s) {
        size_t e = s.find_last_not_of("\r\n ");
        return e == std::string::npos ? std::string() : s.substr(0, e + 1);
    }

    Options o_;
    Binaries bin_;
    std::string work_;
    uint64_t mapMiB_ = 0;
    size_t limitMapBytes_ = 0;
    std::vector<uint8_t> values_;
};

void printResults(const Options& o, const std::vector<Rep>& reps) {
    std::vector<double> sync, limit, ratio, rate, mbs, connect, sent, mcpu, scpu, mwait, swait;
    double mHwm = 0, sHwm = 0, mAnon = 0, sAnon = 0;
    double bytes = double(o.records) * double(o.valueSize + 16);
    for (const auto& r : reps) {
        sync.push_back(r.syncS);
        limit.push_back(r.limitS);
        ratio.push_back(r.syncS / r.limitS);
        rate.push_back(double(o.records) / r.syncS);
        mbs.push_back(bytes / 1e6 / r.syncS);
        connect.push_back(r.connectS);
        sent.push_back(r.sentS);
        mcpu.push_back(r.master.cpuS);
        scpu.push_back(r.slave.cpuS);
        mwait.push_back(r.master.waitS);
        swait.push_back(r.slave.waitS);
        mHwm = std::max(mHwm, r.masterRss.hwmKb / 1024.0);
        sHwm = std::max(sHwm, r.slaveRss.hwmKb / 1024.0);
        mAnon = std::max(mAnon, r.masterRss.anonKb / 1024.0);
        sAnon = std::max(sAnon, r.slaveRss.anonKb / 1024.0);
    }
    auto S = summarize(sync), L = summarize(limit), R = summarize(ratio), Q = summarize(rate),
         M = summarize(mbs);
    printf(
        "RESULT name=full_sync records=%llu value_bytes=%llu reps=%zu sync_s_median=%.3f sync_s_min=%.3f "
        "sync_s_max=%.3f records_per_s_median=%.0f mb_per_s_median=%.1f limit_s_median=%.3f limit_s_min=%.3f "
        "limit_s_max=%.3f ratio_median=%.2f ratio_min=%.2f ratio_max=%.2f master_rss_mb=%.1f "
        "slave_rss_mb=%.1f\n",
        (unsigned long long)o.records, (unsigned long long)o.valueSize, reps.size(), S.median, S.min, S.max,
        Q.median, M.median, L.median, L.min, L.max, R.median, R.min, R.max, mHwm, sHwm);
    printf(
        "RESULT name=full_sync_detail records=%llu connect_s_median=%.3f master_sent_s_median=%.3f "
        "master_cpu_s_median=%.3f slave_cpu_s_median=%.3f master_runq_wait_s_median=%.3f "
        "slave_runq_wait_s_median=%.3f master_anon_mb=%.1f slave_anon_mb=%.1f\n",
        (unsigned long long)o.records, summarize(connect).median, summarize(sent).median,
        summarize(mcpu).median, summarize(scpu).median, summarize(mwait).median, summarize(swait).median,
        mAnon, sAnon);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool help = false;
    auto parsed = parseArgs(argc, argv, o, help);
    if (!parsed) {
        fprintf(stderr, "possync-bench: %s (see --help)\n", parsed.error().message.c_str());
        return 2;
    }
    if (help) {
        fputs(kUsage, stdout);
        return 0;
    }
    auto bin = findBinaries(o.binDir);
    if (!bin) {
        fprintf(stderr, "possync-bench: %s\n", bin.error().message.c_str());
        return 2;
    }
    std::string tmpl = o.workDir + "/possync-bench.XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
        fprintf(stderr, "possync-bench: cannot create a directory in %s: %s\n", o.workDir.c_str(),
                strerror(errno));
        return 1;
    }
    std::string work = tmpl;
    struct statfs sf;
    if (::statfs(work.c_str(), &sf) == 0 && sf.f_type == 0x01021994 /* TMPFS_MAGIC */)
        printf("bench: note: %s is tmpfs: fsync costs nothing there, unlike on a board\n", work.c_str());
    catchInterrupts();
    printf("bench: %llu records of 16+%llu bytes, %llu repetition(s), possyncd %s, work dir %s\n",
           (unsigned long long)o.records, (unsigned long long)o.valueSize, (unsigned long long)o.reps,
           bin->possyncd.c_str(), work.c_str());
    fflush(stdout);

    Bench bench(o, *bin, work);
    int rc = 0;
    std::vector<Rep> reps;
    auto prep = bench.prepare();
    for (uint64_t k = 1; prep && k <= o.reps; ++k) {
        auto r = bench.run(k);
        if (!r) {
            fprintf(stderr, "possync-bench: repetition %llu: %s\n", (unsigned long long)k,
                    r.error().message.c_str());
            rc = 1;
            break;
        }
        printf(
            "REP rep=%llu sync_s=%.3f connect_s=%.3f master_sent_s=%.3f limit_s=%.3f limit_commit_s=%.3f "
            "limit_cpu_s=%.3f limit_runq_wait_s=%.3f ratio=%.2f chunks=%llu master_cpu_s=%.3f "
            "slave_cpu_s=%.3f "
            "master_runq_wait_s=%.3f slave_runq_wait_s=%.3f "
            "master_hwm_mb=%.1f slave_hwm_mb=%.1f "
            "master_anon_mb=%.1f slave_anon_mb=%.1f %s\n",
            (unsigned long long)k, r->syncS, r->connectS, r->sentS, r->limitS, r->limitCommitS, r->limit.cpuS,
            r->limit.waitS, r->syncS / r->limitS, (unsigned long long)r->chunks, r->master.cpuS,
            r->slave.cpuS, r->master.waitS, r->slave.waitS, r->masterRss.hwmKb / 1024.0,
            r->slaveRss.hwmKb / 1024.0, r->masterRss.anonKb / 1024.0, r->slaveRss.anonKb / 1024.0,
            r->digest.c_str());
        fflush(stdout);
        reps.push_back(std::move(*r));
    }
    if (rc == 0) printResults(o, reps);
    std::error_code ec;
    if (o.keep || rc != 0) {
        printf("bench: kept %s\n", work.c_str());
    } else {
        std::filesystem::remove_all(work, ec);
    }
    if (rc == 0) printf("bench: OK, digests of slave and master equal in every repetition\n");
    return rc;
}
