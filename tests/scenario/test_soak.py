#!/usr/bin/env python3
"""Scenario: the crash soak (issue 11, "Crash soak"). Zero loss through SIGKILLs and link faults.

A master (tables menu, orders, ctr) and 3 slaves, each behind its own relay.py. A writer on the
master's directory (`scenario_writer soak`: single puts, single deletes, clears, transactions of
1 to 10,000 records; every transaction also increments the counter table `ctr`) runs for
POSSYNC_SOAK_SECONDS (default 25) while a driver, at random every 0.5 to 2.5 s, SIGKILLs and
restarts the master or a slave, or switches a relay's fault (delay, 1 Mbit/s, 1-byte segments,
blackhole, stall, RST, a corrupted byte, a duplicated or dropped range; each fault clears itself
after 1 to 5 s). POSSYNC_SOAK_SEED picks the random choices (default 1; printed).

Checked all along, by a monitor reading the slaves' directories every ~0.3 s:
  - `check-counter` succeeds on every slave (no gap, no repeated transaction, no torn state) and
    seq - counter is the same on every read of every slave and of the master (one seq per
    transaction: a slave never skips a seq nor applies one twice);
  - a slave's position never goes back within a generation (across its own SIGKILLs too).
Checked at the end (faults cleared, every daemon running, the writer finished): every slave
converges (equal digests, mdb_dump byte-identical); the master's counter equals the last counter
the writer saw committed, and every slave's equals the master's; no FULL sync after the first one
of each slave unless the master logged that the slave's position was trimmed from its log.

SIGKILL is not a power cut: the kernel keeps the page cache of a killed process, so an LMDB commit
(in the page cache) survives it even without fsync. RELIABILITY.md says what a power-loss test
needs instead.

Prints: kills survived, faults switched, transactions written and verified, FULL syncs, the longest
time for a slave to catch up after a kill or a fault's end, the final convergence time.
"""

import os
import random
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, fail, say  # noqa: E402
from relay import (Bandwidth, Blackhole, Corrupt, Delay, DropRange, DuplicateRange, PassThrough,  # noqa: E402
                   Relay, Reset, Slice, Stall)

STORE = "store-soak"
TABLES = ["menu", "orders", "ctr"]
SECONDS = int(os.environ.get("POSSYNC_SOAK_SECONDS", "25"))
SEED = int(os.environ.get("POSSYNC_SOAK_SEED", "1"))
NSLAVES = 3


def fault_choices():
    return [
        ("delay", lambda r: r.set_both(Delay(0.2, 0.05))),
        ("1 Mbit/s", lambda r: r.set_both(Bandwidth(1_000_000))),
        ("1-byte segments", lambda r: r.set_mode("down", Slice())),
        ("blackhole", lambda r: r.set_both(Blackhole())),
        ("stall", lambda r: r.set_both(Stall())),
        ("RST", lambda r: (r.set_both(Reset()), r.reset_links())),
        ("corrupt", lambda r: r.arm_after("down", 5, lambda at, n: Corrupt(at, n))),
        ("duplicate", lambda r: r.arm_after("down", 5, lambda at, n: DuplicateRange(at, 64, n))),
        ("drop", lambda r: r.arm_after("down", 5, lambda at, n: DropRange(at, 64, n))),
    ]


def parse_counter(out):
    m = re.match(r"counter=(\d+) records=\d+ position=([0-9a-f]+):(\d+)", out)
    check(m, f"check-counter said {out!r}")
    return int(m.group(1)), m.group(2), int(m.group(3))


def check_counter(data):
    rc, out, err = harness.run_tool([harness.WRITER, "check-counter", "--data", data], check_rc=False)
    if rc != 0:
        fail(f"{data}: check-counter: {err.strip()}")
    return parse_counter(out.strip())


class Monitor:
    """Reads every slave's directory in a loop; records violations and catch-up times."""

    def __init__(self, master, slaves, offset):
        self.master, self.slaves, self.offset = master, slaves, offset
        self.errors, self.reads = [], 0
        self.last = [None] * len(slaves)  # (generation, seq) last read
        self.pending = {}  # slave index -> (t0, target seq, what ended): a catch-up being timed
        self.catchups = []  # (seconds, slave, what ended, target seq)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(60)

    def recovering(self, i, what):
        """Slave i's disruption (`what`) ended now: time until it reaches the master's head of now."""
        head = int(harness.info(self.master.data)["seq"])
        with self.lock:
            self.pending[i] = (time.monotonic(), head, what)

    def disrupted(self, i):
        with self.lock:
            self.pending.pop(i, None)

    def _loop(self):
        while not self._stop.is_set():
            for i, s in enumerate(self.slaves):
                try:
                    counter, gen, seq = check_counter(s.data)
                except harness.ScenarioFailure as e:
                    self.errors.append(f"{s.name}: {e}")
                    continue
                self.reads += 1
                if seq - counter != self.offset:
                    self.errors.append(f"{s.name}: position {seq} holds counter {counter}: seq - counter = "
                                       f"{seq - counter}, not {self.offset} (a skipped or repeated transaction)")
                last = self.last[i]
                if last and last[0] == gen and seq < last[1]:
                    self.errors.append(f"{s.name}: position went back from {last[1]} to {seq} in generation {gen}")
                self.last[i] = (gen, seq)
                with self.lock:
                    p = self.pending.get(i)
                    if p and seq >= p[1]:
                        self.catchups.append((time.monotonic() - p[0], self.slaves[i].name, p[2], p[1]))
                        del self.pending[i]
            self._stop.wait(0.3)


def main(scn):
    rng = random.Random(SEED)
    say(f"soak: {SECONDS} s, seed {SEED} (POSSYNC_SOAK_SECONDS, POSSYNC_SOAK_SEED)")
    master = scn.master("master", STORE, TABLES).start()
    say(harness.writer("mixed", "--data", master.data, "--ops", "2000", "--seed", str(SEED), "--tables",
                       "menu,orders"))
    say(harness.writer("counter", "--data", master.data, "--count", "1"))
    relays = [Relay(("127.0.0.1", master.port)).start() for _ in range(NSLAVES)]
    scn.servers.extend(relays)
    slaves = [scn.slave(f"slave{i}", STORE, relays[i], args=["--device", f"slave{i}"]).start()
              for i in range(NSLAVES)]
    for s in slaves:
        s.wait_log(r"FULL sync complete")
    harness.converge(master, slaves)
    # Taken once the slaves are in the trust set (the pairing window's admissions are log entries
    # too, DESIGN.md §11): every later seq is one writer transaction with one counter step.
    counter0, gen, seq0 = check_counter(master.data)
    offset = seq0 - counter0

    monitor = Monitor(master, slaves, offset).start()
    writer = scn.spawn([harness.WRITER, "soak", "--data", master.data, "--seconds", str(SECONDS), "--seed",
                        str(SEED), "--tables", ",".join(TABLES[:2]), "--pause-ms", "5"])
    kills = {"master": 0, "slave": 0}
    faults_switched = 0
    fault_until = [None] * NSLAVES  # when relay i's fault is cleared
    fault_name = [None] * NSLAVES
    choices = fault_choices()
    t_end = time.monotonic() + SECONDS
    while writer.poll() is None and time.monotonic() < t_end + 60:
        time.sleep(rng.uniform(0.5, 2.5))
        now = time.monotonic()
        for i, until in enumerate(fault_until):
            if until and now >= until:
                relays[i].set_both(PassThrough())
                fault_until[i] = None
                monitor.recovering(i, f"end of fault '{fault_name[i]}'")
        if now >= t_end:
            continue  # the writer's last transactions: let it finish in peace
        action = rng.random()
        if action < 0.2:
            for i in range(NSLAVES):
                monitor.disrupted(i)
            master.kill()
            kills["master"] += 1
            time.sleep(rng.uniform(0.1, 1.5))
            master.restart_on_same_port()
            for i in range(NSLAVES):
                if fault_until[i] is None and slaves[i].alive():
                    monitor.recovering(i, "master restart")
        elif action < 0.5:
            i = rng.randrange(NSLAVES)
            monitor.disrupted(i)
            slaves[i].kill()
            kills["slave"] += 1
            time.sleep(rng.uniform(0.1, 1.5))
            slaves[i].start()
            if fault_until[i] is None:
                monitor.recovering(i, "slave restart")
        else:
            i = rng.randrange(NSLAVES)
            name, apply = rng.choice(choices)
            monitor.disrupted(i)
            relays[i].set_both(PassThrough())
            apply(relays[i])
            fault_until[i] = now + rng.uniform(1, 5)
            fault_name[i] = name
            faults_switched += 1
        harness.check(master.alive(), "the master died by itself")
        for s in slaves:
            s.expect_alive()
    check(writer.poll() is not None, "the soak writer did not finish")
    out, err = writer.communicate(timeout=10)
    check(writer.returncode == 0, f"the soak writer failed: {err.decode(errors='replace').strip()}")
    line = out.decode().strip().splitlines()[-1]
    say(f"writer: {line}")
    m = re.search(r"txns=(\d+) counter=(\d+)", line)
    check(m, f"the writer's summary is {line!r}")
    txns, written = int(m.group(1)), int(m.group(2))

    # Quiescence: every fault off, every daemon up, the writer done.
    for r in relays:
        r.set_both(PassThrough())
    t_quiet = time.monotonic()
    want = harness.digest(master.data)
    harness.wait_until("every slave to reach the master after the soak",
                       lambda: all(harness.digest(s.data) == want for s in slaves), timeout=120, interval=0.1)
    final_converge = time.monotonic() - t_quiet
    time.sleep(0.5)  # one more round of the monitor on the final state
    monitor.stop()
    check(not monitor.errors, f"{len(monitor.errors)} invariant violations, first: {monitor.errors[0]}"
          if monitor.errors else "")
    harness.converge(master, slaves)
    mc, _, _ = check_counter(master.data)
    check(mc == written, f"the master's counter is {mc}, the writer saw {written} committed")
    check(written - counter0 == txns, f"the writer committed {txns} transactions but the counter moved "
                                      f"{written - counter0}")
    for s in slaves:
        sc, _, _ = check_counter(s.data)
        check(sc == mc, f"{s.name}'s counter is {sc}, the master's {mc}")

    mlog = master.text()
    fulls_total = 0
    for s in slaves:
        fulls = s.count(r"FULL sync complete")
        trims = len(re.findall(rf"slave {s.name} at [^\n]*FULL sync \(slave's position was trimmed", mlog))
        other = [m.group(1) for m in re.finditer(rf"slave {s.name} at [^\n]*FULL sync \(([^;]*);", mlog)
                 if m.group(1) not in ("slave is starting", "slave's position was trimmed from the log")]
        check(not other, f"the master sent {s.name} a FULL sync because: {other[0]}" if other else "")
        check(fulls <= 1 + trims, f"{s.name} completed {fulls} FULL syncs; only {trims} forced by a log trim")
        fulls_total += fulls
    longest = max(monitor.catchups) if monitor.catchups else (0.0, "-", "-", 0)
    for s in slaves:
        s.stop()
    master.stop()
    print()
    print(f"Crash soak: {SECONDS} s, seed {SEED}")
    print(f"  kills survived: {kills['master']} of the master, {kills['slave']} of slaves (SIGKILL, restarted)")
    print(f"  relay faults switched: {faults_switched}")
    print(f"  transactions written: {txns} (counter {counter0} -> {written}); verified exactly once on the "
          f"master and {NSLAVES} slaves")
    print(f"  invariant reads (check-counter + position) during the soak: {monitor.reads}, violations: 0")
    print(f"  FULL syncs: {fulls_total} ({NSLAVES} initial; {fulls_total - NSLAVES} later, each forced by a log trim)")
    print(f"  catch-ups timed (a slave reaching the master's head of the moment its disruption ended): "
          f"{len(monitor.catchups)}; longest {longest[0]:.2f} s ({longest[1]} after {longest[2]}, to seq "
          f"{longest[3]}); final convergence {final_converge:.2f} s")
    for secs, name, what, target in sorted(monitor.catchups, reverse=True)[:5]:
        say(f"catch-up {secs:.2f} s: {name} after {what} (to seq {target})")
    print(flush=True)


if __name__ == "__main__":
    harness.run(main)
