// possync-secure-bench: what sealing the links costs (DESIGN.md §11, issue 14), side by side in
// one run: a FULL sync of N records and the latency of single INCREMENTAL changes, with links
// sealed (the trust handshake, then XChaCha20-Poly1305 per frame: sync/secure_link.h) and with
// plaintext links.
//
// The master is the real sync::Master in a child process (its own loop, fork before any loop
// or LMDB environment exists), the slave the real sync::Replica in this one; they talk TCP on
// 127.0.0.1 and both commit with fsync, as the daemons do. What the daemons add around them
// (options, discovery, the console) is not on these paths. Plaintext links exist only in this
// program, to measure against; repetitions alternate the two modes so both see the same disk
// and cache state.
//
// One repetition of a mode:
//   1. a fresh master directory is filled with N records (not timed), everything is written to
//      the disk (sync(2)), then the master starts;
//   2. timed: the replica starts on an empty directory -> its position equals the master's
//      head (the FULL committed);
//   3. K times: one change is committed (fsync) on the master's directory from this process,
//      as a POS application would -> timed until the slave has applied and committed it;
//   4. the slave's digest must equal the master's, or the run fails.
// Results are printed as `RESULT name=... key=value ...` lines.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "log/log.h"
#include "uv/idle.h"
#include "uv/loop.h"
#include "uv/signal.h"

#include "proc_stats.h"
#include "store/store.h"
#include "sync/master.h"
#include "sync/replica.h"
#include "sync/secure_link.h"
#include "trust/identity.h"

using namespace possync;

namespace {

const char* kUsage = R"(possync-secure-bench - FULL sync and INCREMENTAL latency, sealed links vs plaintext

usage: possync-secure-bench [--records N] [--value-size B] [--changes K] [--reps R] [--short]
                            [--work-dir DIR]

  --records N      records in the FULL sync's data set (default 300000)
  --value-size B   value bytes per record; keys are 16 bytes (default 100)
  --changes K      single-change INCREMENTAL latencies measured per repetition (default 300)
  --reps R         repetitions of each mode, alternating (default 3)
  --short          N = 20000, K = 50, R = 1 unless given (the 'bench' test: checks the run
                   works and the digests match; asserts no timing)
  --work-dir DIR   parent of the temporary data directories (default /var/tmp)
  --only MODE      run only `sealed` or `plaintext` (for profiling one of them)
)";

struct Options {
    uint64_t records = 300000;
    uint64_t valueSize = 100;
    uint64_t changes = 300;
    uint64_t reps = 3;
    std::string workDir = "/var/tmp";
    int only = -1;  // 0 plaintext, 1 sealed, -1 both
};

[[noreturn]] void die(const std::string& what) {
    fprintf(stderr, "secure-bench: %s\n", what.c_str());
    exit(1);
}

template <typename T>
T must(Result<T> r, const char* what) {
    if (!r) die(std::string(what) + ": " + r.error().message);
    return std::move(r).value();
}
void must(Status s, const char* what) {
    if (!s) die(std::string(what) + ": " + s.error().message);
}

double selfCpuS() {
    rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double nowMs() {
    using namespace std::chrono;
    return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

trust::Identity keyOf(uint8_t b) {
    std::array<uint8_t, 32> seed;
    seed.fill(b);
    return trust::Identity::fromSeed(seed);
}

trust::PeerCheck admitOnly(const trust::PublicKey& member) {
    return [member](const trust::PublicKey& peer, uint32_t) -> Result<trust::PeerStanding> {
        if (peer != member) return makeError(Errc::Refused, "not the benchmark's peer");
        return trust::PeerStanding::Member;
    };
}

class FixedLocator final : public sync::Locator {
public:
    explicit FixedLocator(uint16_t port) : port_(port) {}
    Result<sync::MasterTarget> choose() override {
        return sync::MasterTarget{"127.0.0.1", port_, "", "bench", 0};
    }
    void setOnChange(std::function<void()>) override {}
    std::string describe() const override { return "127.0.0.1:" + std::to_string(port_); }

private:
    uint16_t port_;
};

std::string key16(uint64_t i) {
    char k[17];
    snprintf(k, sizeof k, "%016llx", static_cast<unsigned long long>(i));
    return k;
}

void fill(const std::string& dir, const Options& o) {
    store::StoreOptions so;
    so.deviceId = "bench-master";
    so.mapSize = size_t(4) << 30;
    auto st = must(store::Store::open(dir, so), "open the master directory");
    must(st->setWatchedTables({"orders"}), "watch orders");
    std::string value(o.valueSize, 'v');
    for (uint64_t done = 0; done < o.records;) {
        auto w = must(st->beginWrite(), "begin");
        for (uint64_t n = 0; n < 10000 && done < o.records; ++n, ++done)
            must(w.put("orders", Bytes(key16(done)), Bytes(value)), "put");
        must(w.commit(), "commit");
    }
}

// The child: the master until SIGTERM. Writes its port to `portFd`.
int runMaster(const std::string& dir, bool sealed, int portFd) {
    auto loop = must(uv::Loop::create(), "loop");
    store::StoreOptions so;
    so.mapSize = size_t(4) << 30;
    auto st = must(store::Store::open(dir, so), "open the master");
    sync::MasterConfig mc;
    mc.listen = "127.0.0.1:0";
    mc.storeId = "bench";
    mc.deviceId = "bench-master";
    if (sealed) mc.security = sync::LinkSecurity{keyOf(1), admitOnly(keyOf(2).publicKey())};
    auto m = must(sync::Master::create(*loop, *st, mc), "master");
    uint16_t port = m->port();
    if (write(portFd, &port, sizeof port) != sizeof port) return 1;
    close(portFd);
    auto sig = must(uv::Signal::create(*loop, SIGTERM,
                                       [&](int) {
                                           m->stop();
                                           loop->stop();
                                       }),
                    "signal");
    loop->run();
    m.reset();
    sig.reset();
    (void)loop->close();
    return 0;
}

struct RepResult {
    double fullMs = 0;
    double masterCpuS = 0;
    double slaveFullCpuS = 0;  // this process during the FULL
    double masterFullCpuS = 0;
    std::vector<double> changeMs;
};

RepResult runRep(const Options& o, bool sealed, const std::string& root) {
    std::string mdir = root + "/master", sdir = root + "/slave";
    std::filesystem::remove_all(root);
    std::filesystem::create_directories(mdir);
    std::filesystem::create_directories(sdir);
    fill(mdir, o);
    // Nothing of the fill (or of the last repetition's removed directories) may still be on its
    // way to the disk while the FULL's commit waits for its fsync.
    ::sync();
    int fds[2];
    if (pipe(fds) != 0) die("pipe");
    pid_t pid = fork();
    if (pid < 0) die("fork");
    if (pid == 0) {
        close(fds[0]);
        _exit(runMaster(mdir, sealed, fds[1]));
    }
    close(fds[1]);
    uint16_t port = 0;
    if (read(fds[0], &port, sizeof port) != sizeof port) die("the master did not start");
    close(fds[0]);

    RepResult out;
    {
        auto loop = must(uv::Loop::create(), "loop");
        store::StoreOptions so;
        so.mapSize = size_t(4) << 30;
        so.writeMap = true;  // as the daemon opens a slave
        so.deviceId = "bench-slave";
        auto slave = must(store::Store::open(sdir, so), "open the slave");
        must(slave->setRole(store::Role::Slave), "slave role");
        store::StoreOptions wo;
        wo.mapSize = size_t(4) << 30;
        auto writer = must(store::Store::open(mdir, wo), "open the master for writing");
        const uint64_t head = must(writer->meta(), "meta").seq;

        FixedLocator locator(port);
        sync::ReplicaConfig rc;
        rc.storeId = "bench";
        rc.deviceId = "bench-slave";
        rc.backoffMinMs = 10;
        rc.backoffMaxMs = 50;
        if (sealed) rc.security = sync::LinkSecurity{keyOf(2), admitOnly(keyOf(1).publicKey())};
        auto replica = must(sync::Replica::create(*loop, *slave, locator, rc), "replica");
        auto idle = must(uv::Idle::create(*loop), "idle");

        // Runs the loop until the slave holds `seq` (polled every loop turn) or 600 s passed.
        auto until = [&](uint64_t seq) {
            const double deadline = nowMs() + 600000;
            bool reached = false;
            idle->start([&] {
                auto m = slave->meta();
                if ((m && m->seq >= seq) || nowMs() > deadline) {
                    reached = m && m->seq >= seq;
                    idle->stop();
                    loop->stop();
                }
            });
            loop->run();
            if (!reached) die("the slave did not reach seq " + std::to_string(seq) + " within 600 s");
        };

        double t0 = nowMs(), c0 = selfCpuS(), m0 = bench::readSched(pid).cpuS;
        replica->start();
        until(head);
        out.fullMs = nowMs() - t0;
        out.slaveFullCpuS = selfCpuS() - c0;
        out.masterFullCpuS = bench::readSched(pid).cpuS - m0;
        std::string value(o.valueSize, 'c');
        for (uint64_t i = 0; i < o.changes; ++i) {
            auto w = must(writer->beginWrite(), "begin");
            must(w.put("orders", Bytes(key16(i)), Bytes(value)), "put");
            must(w.commit(), "commit");
            double w0 = nowMs();
            until(head + i + 1);
            out.changeMs.push_back(nowMs() - w0);
        }
        out.masterCpuS = bench::readSched(pid).cpuS;
        auto a = must(writer->watchedDigest(), "master digest");
        auto b = must(slave->watchedDigest(), "slave digest");
        if (a.digest != b.digest || a.seq != b.seq) die("the slave's digest differs from the master's");
        replica->stop();
        replica.reset();
        idle.reset();
        (void)loop->close();
    }
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) die("the master did not exit 0");
    std::filesystem::remove_all(root);
    return out;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
    return v[i];
}

uint64_t number(const char* text, const char* name) {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || end == text || *end || v == 0 || text[0] == '-')
        die(std::string("--") + name + " needs a positive number, not '" + text + "'");
    return v;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    bool shortRun = false, records = false, changes = false, reps = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> const char* {
            if (i + 1 >= argc) die(a + " needs a value");
            return argv[++i];
        };
        if (a == "--records")
            o.records = number(next(), "records"), records = true;
        else if (a == "--value-size")
            o.valueSize = number(next(), "value-size");
        else if (a == "--changes")
            o.changes = number(next(), "changes"), changes = true;
        else if (a == "--reps")
            o.reps = number(next(), "reps"), reps = true;
        else if (a == "--work-dir")
            o.workDir = next();
        else if (a == "--short")
            shortRun = true;
        else if (a == "--only") {
            std::string m = next();
            if (m != "sealed" && m != "plaintext") die("--only takes sealed or plaintext, not '" + m + "'");
            o.only = m == "sealed" ? 1 : 0;
        } else if (a == "--help") {
            fputs(kUsage, stdout);
            return 0;
        } else {
            fputs(kUsage, stderr);
            return 2;
        }
    }
    if (shortRun) {
        if (!records) o.records = 20000;
        if (!changes) o.changes = 50;
        if (!reps) o.reps = 1;
    }
    must(trust::initSodium(), "libsodium");
    ::signal(SIGPIPE, SIG_IGN);
    possync::log::setAllLevels(possync::log::Level::Warning);
    std::string root = o.workDir + "/possync-secure-bench-" + std::to_string(getpid());
    printf(
        "secure-bench: %llu records of 16+%llu bytes, %llu single changes, %llu repetition(s) per mode, work "
        "dir %s\n",
        (unsigned long long)o.records, (unsigned long long)o.valueSize, (unsigned long long)o.changes,
        (unsigned long long)o.reps, o.workDir.c_str());
    std::vector<double> full[2], cpu[2], lat[2];
    for (uint64_t r = 0; r < o.reps; ++r) {
        for (int sealed = 0; sealed < 2; ++sealed) {
            if (o.only >= 0 && sealed != o.only) continue;
            RepResult rr = runRep(o, sealed == 1, root);
            full[sealed].push_back(rr.fullMs);
            cpu[sealed].push_back(rr.masterCpuS);
            lat[sealed].insert(lat[sealed].end(), rr.changeMs.begin(), rr.changeMs.end());
            printf(
                "secure-bench: rep %llu %s: FULL %.0f ms (%.0f records/s; CPU master %.0f ms, slave %.0f "
                "ms), "
                "change p50 %.3f ms p99 %.3f ms\n",
                (unsigned long long)r + 1, sealed ? "sealed" : "plaintext", rr.fullMs,
                double(o.records) / (rr.fullMs / 1000), rr.masterFullCpuS * 1000, rr.slaveFullCpuS * 1000,
                percentile(rr.changeMs, 0.5), percentile(rr.changeMs, 0.99));
            fflush(stdout);
        }
    }
    double fp = percentile(full[0], 0.5), fs = percentile(full[1], 0.5);
    double lp = percentile(lat[0], 0.5), ls = percentile(lat[1], 0.5);
    double lp99 = percentile(lat[0], 0.99), ls99 = percentile(lat[1], 0.99);
    printf(
        "RESULT name=secure_links records=%llu value_bytes=%llu changes=%llu reps=%llu "
        "full_plain_ms_median=%.1f full_sealed_ms_median=%.1f full_throughput_ratio=%.3f "
        "change_plain_p50_ms=%.3f change_sealed_p50_ms=%.3f change_p50_ratio=%.3f "
        "change_plain_p99_ms=%.3f change_sealed_p99_ms=%.3f master_cpu_plain_s=%.2f "
        "master_cpu_sealed_s=%.2f\n",
        (unsigned long long)o.records, (unsigned long long)o.valueSize, (unsigned long long)o.changes,
        (unsigned long long)o.reps, fp, fs, fs > 0 ? fp / fs : 0, lp, ls, lp > 0 ? ls / lp : 0, lp99, ls99,
        percentile(cpu[0], 0.5), percentile(cpu[1], 0.5));
    return 0;
}
