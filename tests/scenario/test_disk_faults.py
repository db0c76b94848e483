#!/usr/bin/env python3
"""Issue 11, disk faults: ENOSPC and EIO from write, fsync and msync, injected with libfiu.

The daemons run under `fiu-run -x` (LD_PRELOAD of libfiu's POSIX wrappers); `fiu-ctrl` turns
failure points on and off in the running process. The points are the ones LMDB's commit really
goes through (liblmdb 0.9.24 imports pwrite, writev, fdatasync, msync):
  - a slave opens its environment with MDB_WRITEMAP: a commit is msync(MS_SYNC) of the map,
    then of the meta page -> `posix/mm/msync`;
  - a master (and `possync put`) writes without MDB_WRITEMAP: pwrite/writev of the dirty
    pages, fdatasync, then pwrite of the meta page -> `posix/io/sync/fdatasync`,
    `posix/io/rw/pwrite`.
(`posix/io/rw/write` and `writev` are left alone: libuv writes the sockets and the log with them.)
Every injection is proven by the errno's text in the daemon's log.

Phases (one master, slave1; counter transactions, see scenario_writer counter):
  A. slave1, during INCREMENTAL batches: msync fails with ENOSPC at every call (a chosen
     point), then at random (50 %, EIO). The console says `waiting: disk error ...` and counts
     errors_disk; `possync get` and check-counter on slave1 keep working and never see a state no
     master transaction left; its position never moves during the fault. Cleared: slave1 resumes
     INCREMENTAL by itself (no FULL) and converges.
  B. slave1, during a FULL apply: slave1 is stopped, the master's log trimmed past it; slave1
     comes back with msync failing: the FULL's commit fails, its old data set and position stay
     (digest unchanged), the console says why. Cleared: the FULL completes, it converges.
  C. the master, during log trims: fdatasync fails with EIO: trims fail (log, errors_trim on the
     console), the master keeps serving (slave1 follows new transactions meanwhile). Cleared:
     the next trim works and the log shrinks. Then pwrite at random (50 %, EIO): a failed
     meta-page write makes LMDB refuse the whole environment (MDB_PANIC): the master exits 1,
     is restarted (as its service manager would), slave1 resumes INCREMENTAL.
  D. a writer on the master (`possync put` under fiu-run) with fdatasync (ENOSPC) or pwrite (EIO)
     failing: a non-zero exit naming the error; nothing of it committed, nothing committed before
     lost (the master's digest is unchanged; slave1 converges).
The old replica reported a failed commit as a protocol error with no waiting reason and
reconnected every 100 ms (phase A failed); after MDB_PANIC the old daemons stayed up but could
never write (or, on the master, read) again.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, fail, say  # noqa: E402

STORE = "store-disk-faults"
TABLES = ["ctr"]
FIU_RUN = shutil.which("fiu-run")
FIU_CTRL = shutil.which("fiu-ctrl")
ENOSPC, EIO = 28, 5
MSYNC, FDATASYNC, PWRITE = "posix/mm/msync", "posix/io/sync/fdatasync", "posix/io/rw/pwrite"
MAX_ENTRIES, HARD_MAX = 40, 60


class Fiu:
    """Runs a Daemon under fiu-run with its control FIFOs in the scenario directory."""

    def __init__(self, scn, daemon):
        self.prefix = scn.path("fiu-" + daemon.name)
        self.daemon = daemon
        self.initial = []  # fiu-run -c commands for the next start (a fault from the first write on)
        plain = daemon.command
        daemon.command = lambda: [FIU_RUN, "-x", "-f", self.prefix] + \
            [a for c in self.initial for a in ("-c", c)] + plain()

    def ctrl(self, command):
        harness.run_tool([FIU_CTRL, "-f", self.prefix, "-c", command, str(self.daemon.proc.pid)], timeout=20)

    def enable(self, name, errno):
        self.ctrl(f"enable name={name},failinfo={errno}")

    def enable_random(self, name, errno, probability):
        self.ctrl(f"enable_random name={name},probability={probability},failinfo={errno}")

    def disable(self, name):
        self.ctrl(f"disable name={name}")


def status(sock):
    ok, lines = harness.console(sock, "status")
    check(ok, f"console status failed: {lines}")
    return dict((k.strip(), v.strip()) for k, _, v in (l.partition(":") for l in lines))


def stats(sock):
    ok, lines = harness.console(sock, "stats")
    check(ok, f"console stats failed: {lines}")
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if value.strip().isdigit():
            out[key.strip()] = int(value)
    return out


def seq(data):
    return int(harness.info(data)["seq"])


def counter_of(data):
    """check-counter's counter; a failure if the board holds a state no prefix of the master's
    transactions left (a partly applied transaction)."""
    rc, out, err = harness.run_tool([harness.WRITER, "check-counter", "--data", data], check_rc=False)
    if rc != 0:
        fail(f"{data}: {err.strip()}")
    return int(out.split()[0].split("=")[1])


def write(master, count):
    return harness.writer("counter", "--data", master.data, "--count", str(count))


def wait_waiting(sock, text, timeout=20):
    def got():
        w = status(sock).get("waiting", "")
        return w if text in w else None
    return harness.wait_until(f"the console's waiting line to say {text!r}", got, timeout=timeout)


def fault_on_slave(master, slave, fiu, sock, name, errno, errtext, probability=None):
    """Transactions on the master while the slave's disk fails; returns when it converged again."""
    fulls = slave.count(r"FULL sync complete")
    before_seq, before_counter = seq(slave.data), counter_of(slave.data)
    offset = seq(master.data) - counter_of(master.data)  # seq of the master's counter transaction 0
    check(before_seq - before_counter == offset,
          f"{slave.name} is at seq {before_seq} with counter {before_counter}: not a master position")
    mark = slave.mark()
    if probability is None:
        fiu.enable(name, errno)
    else:
        fiu.enable_random(name, errno, probability)
    write(master, 30)
    failed = r"cannot store the master's changes: disk error: .*" + errtext
    if probability is None:
        slave.wait_log(failed, since=mark)
        reason = wait_waiting(sock, "disk error")
        check(errtext in reason, f"the waiting line does not name the error: {reason!r}")
        say(f"{slave.name} console: waiting: {reason}")
        # Reads go on, and the position stays where its data is while every commit fails.
        for _ in range(3):
            check(seq(slave.data) == before_seq, f"{slave.name} moved from {before_seq} while its disk fails")
            check(counter_of(slave.data) == before_counter, f"{slave.name}'s data moved while its disk fails")
            out = harness.possync(slave.data, "get", "ctr", "counter").strip()
            check(out, f"possync get on {slave.name} printed nothing")
        check(stats(sock).get("errors_disk", 0) > 0, f"{slave.name}'s console counts no errors_disk")
    else:
        # At random some commits pass: the position may move, but only with its data. A third
        # of the failures hit the meta page's msync (see below): wait for one, or for 8 failures.
        def enough():
            c = counter_of(slave.data)
            check(c >= before_counter, f"{slave.name}'s counter went back from {before_counter} to {c}")
            if not slave.alive() or slave.count(failed, since=mark) >= 8:
                return True
            write(master, 5)  # more commits to fail
            return False
        harness.wait_until(f"{slave.name} to fail 8 commits or exit", enough, timeout=30)
    fiu.disable(name)
    say(f"{slave.name}: {name} errno {errno} cleared after {slave.count(errtext, since=mark)} logged failures")
    if not slave.alive():
        # The meta page's msync failed: LMDB refuses every later transaction (MDB_PANIC) until
        # the environment is reopened, so the daemon exits 1 for its service manager to restart.
        rc = slave.proc.wait(10)
        check(rc == 1, f"{slave.name} exited {rc} after MDB_PANIC, not 1")
        check(slave.count(r"LMDB environment unusable after a failed write: .*MDB_PANIC.*exiting \(status 1\)",
                          since=mark) == 1, f"{slave.name} exited without saying why")
        say(f"{slave.name} exited 1 after MDB_PANIC (a failed meta-page write); restarted as systemd would")
        counter_of(slave.data)
        slave.start()
    else:
        slave.wait_log(r"disk writes work again", since=mark)
    harness.converge(master, [slave])
    check(slave.count(r"FULL sync complete") == fulls, f"{slave.name} took a FULL sync the log did not force")
    check(slave.count(r"resumes INCREMENTAL", since=mark) >= 1, f"{slave.name} did not resume INCREMENTAL")


def main(scn):
    msock, ssock = scn.path("master.sock"), scn.path("slave1.sock")
    master = scn.master("master", STORE, TABLES,
                        args=["--console", msock, "--log-max-entries", str(MAX_ENTRIES),
                              "--log-hard-max-entries", str(HARD_MAX)])
    mfiu = Fiu(scn, master)
    master.start()
    write(master, 20)
    slave = scn.slave("slave1", STORE, master, args=["--console", ssock])
    sfiu = Fiu(scn, slave)
    slave.start()
    slave.wait_log(r"FULL sync complete")
    harness.converge(master, [slave])

    # A. INCREMENTAL batches on a failing disk: every msync (chosen point), then at random.
    say("A. slave1: msync fails (ENOSPC) during INCREMENTAL batches")
    fault_on_slave(master, slave, sfiu, ssock, MSYNC, ENOSPC, "No space left on device")
    say("A. slave1: msync fails at random (50 %, EIO) during INCREMENTAL batches")
    fault_on_slave(master, slave, sfiu, ssock, MSYNC, EIO, "Input/output error", probability=0.5)

    # B. A FULL apply on a failing disk: the old data set and position stay.
    say("B. slave1: msync fails (EIO) during a FULL apply")
    slave.stop()
    old = harness.digest(slave.data)
    write(master, HARD_MAX + 100)
    harness.wait_until("the master to trim its log past slave1",
                       lambda: int(harness.info(master.data)["log_first"]) > seq(slave.data) + 1, timeout=20)
    mark = slave.mark()
    sfiu.initial = [f"enable name={MSYNC},failinfo={EIO}"]
    slave.start()
    sfiu.initial = []
    slave.wait_log(r"sends a FULL sync", since=mark)
    slave.wait_log(r"cannot store the master's changes: disk error: .*Input/output error", since=mark)
    reason = wait_waiting(ssock, "disk error")
    say(f"slave1 console: waiting: {reason}")
    for _ in range(3):
        check(harness.digest(slave.data) == old, "slave1's data set changed although its FULL failed")
        counter_of(slave.data)
    sfiu.disable(MSYNC)
    slave.wait_log(r"FULL sync complete", since=mark)
    harness.converge(master, [slave])
    check(slave.count(r"FULL sync complete", since=mark) == 1, "more than one FULL after the fault")

    # C. Log trims on the master's failing disk: the master keeps serving from its log.
    say("C. master: fdatasync fails (EIO) during log trims")
    first = int(harness.info(master.data)["log_first"])
    fulls = slave.count(r"FULL sync complete")
    mark = master.mark()
    mfiu.enable(FDATASYNC, EIO)
    write(master, 2 * MAX_ENTRIES)
    master.wait_log(r"log trim failed: .*Input/output error", since=mark)
    harness.wait_until("errors_trim on the master's console", lambda: stats(msock).get("errors_trim", 0) > 0,
                       timeout=10)
    check(int(harness.info(master.data)["log_first"]) == first, "the log was trimmed although every trim fails")
    harness.converge(master, [slave])  # served from the log meanwhile
    check(slave.count(r"FULL sync complete") == fulls, "slave1 took a FULL during the master's trim fault")
    mfiu.disable(FDATASYNC)
    harness.wait_until("a trim to work again",
                       lambda: int(harness.info(master.data)["log_entries"]) <= MAX_ENTRIES, timeout=20)
    say(f"C. master: trims failed ({master.count('log trim failed', since=mark)} logged), then worked: "
        f"log_first {first} -> {harness.info(master.data)['log_first']}")

    # C2. At random (pwrite EIO, 50 %): a failed page write fails the trim as above; a failed
    # meta-page write leaves the master's environment fatal (MDB_PANIC, reads included), so
    # it exits 1 to be restarted; its slave resumes INCREMENTAL (its log still covers it).
    say("C2. master: pwrite fails at random (50 %, EIO) during log trims")
    fulls = slave.count(r"FULL sync complete")
    mark, smark = master.mark(), slave.mark()
    mfiu.enable_random(PWRITE, EIO, 0.5)

    def trims_failed():
        if not master.alive() or master.count(r"log trim failed: .*Input/output error", since=mark) >= 5:
            return True
        write(master, MAX_ENTRIES // 2)  # past --log-max-entries: a trim is due
        return False
    harness.wait_until("the master to fail 5 trims or exit", trims_failed, timeout=40, interval=0.3)
    if master.alive():
        mfiu.disable(PWRITE)
        # A failed meta-page write shows at the next trim check (MDB_PANIC): the master exits
        # then; otherwise the next trim works.
        write(master, MAX_ENTRIES)
        harness.wait_until("the master to trim again or exit",
                           lambda: not master.alive() or int(harness.info(master.data)["log_entries"]) <= MAX_ENTRIES,
                           timeout=20, interval=0.2)
    if master.alive():
        say(f"C2. master: {master.count('log trim failed', since=mark)} trims failed, no meta-page failure")
    else:
        rc = master.proc.wait(10)
        check(rc == 1, f"the master exited {rc} after MDB_PANIC, not 1")
        check(master.count(r"LMDB environment unusable after a failed write: .*MDB_PANIC.*exiting \(status 1\)",
                           since=mark) == 1, "the master exited without saying why")
        say("C2. master exited 1 after MDB_PANIC (a failed meta-page write); restarted as systemd would")
        master.restart_on_same_port()
        slave.wait_log(r"resumes INCREMENTAL", since=smark, timeout=30)
    write(master, 5)
    harness.converge(master, [slave])
    check(slave.count(r"FULL sync complete") == fulls, "slave1 took a FULL during the master's trim faults")

    # D. A writer on the master gets a clear error; nothing committed is lost.
    for name, errno, errtext in ((FDATASYNC, ENOSPC, "No space left on device"),
                                 (PWRITE, EIO, "Input/output error")):
        say(f"D. possync put on the master with {name} failing ({errtext})")
        before = harness.digest(master.data)
        rc, out, err = harness.run_tool([FIU_RUN, "-x", "-f", "", "-c", f"enable name={name},failinfo={errno}",
                                         harness.POSSYNC, "--data", master.data, "put", "ctr", "extra", "1"],
                                        check_rc=False)
        check(rc != 0, f"possync put succeeded although {name} failed")
        check(errtext in err, f"possync put's error does not name the cause: {err.strip()!r}")
        say(f"D. possync put exited {rc}: {err.strip()}")
        check(harness.digest(master.data) == before, "a failed put changed the master's data")
        rc, out, err = harness.run_tool([harness.POSSYNC, "--data", master.data, "get", "ctr", "extra"],
                                        check_rc=False)
        check(rc != 0, f"the failed put's key is there: {out.strip()!r}")
    write(master, 5)
    harness.converge(master, [slave])
    counter_of(master.data)
    counter_of(slave.data)


if __name__ == "__main__":
    if not FIU_RUN or not FIU_CTRL:
        print("SKIP: fiu-run/fiu-ctrl not installed (tools/setup installs fiu-utils)", flush=True)
        sys.exit(77)
    if harness.SANITIZED:
        # libfiu interposes write/fsync/msync through LD_PRELOAD, which ASan refuses ("ASan
        # runtime does not come first"); the plain build runs this test in full.
        print("SKIP: libfiu's LD_PRELOAD cannot run beside ASan; build/ runs this test", flush=True)
        sys.exit(77)
    harness.run(main)
