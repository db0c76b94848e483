#!/usr/bin/env python3
"""Scenario 3: SIGKILL of a slave, then of the master, while changes stream; both resume INCREMENTAL.

Writers commit 2,500 transactions to the master's directory over several seconds, 1,500 for the
first phase and 1,000 for the second (each phase has its own, so a slow machine, e.g. under ASan,
cannot use up the second phase's changes during the first); transaction i sets ctr/counter = i,
adds rec/i and moves tail/(i-1) to tail/i (scenario_writer counter).
A reader checks both slaves all along with `scenario_writer check-counter`: every observation
must be a state some prefix of the transactions left (records exactly 1..counter, one tail key),
and a slave's counter never goes back. A lost change leaves a gap; an old change applied again
leaves a stale tail key or a counter that disagrees with the records.
While the writer runs: slave1 is killed (SIGKILL) and restarted; then the master is killed and
restarted on the same port (the writer keeps committing to its directory meanwhile).
Checks: after each restart the slaves log "resumes INCREMENTAL" and no new FULL sync; finally
both slaves equal the master (digest, mdb_dump) with counter 2,500.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, fail, say  # noqa: E402

STORE = "store-resume"
TABLES = ["ctr"]
PHASES = (1500, 1000)  # transactions the writer commits during phase 1 and during phase 2
TRANSACTIONS = sum(PHASES)


def seq(data):
    return int(harness.info(data)["seq"])


def counter_of(data):
    """check-counter's counter, or a failure naming the inconsistency."""
    rc, out, err = harness.run_tool([harness.WRITER, "check-counter", "--data", data], check_rc=False)
    if rc != 0:
        fail(f"{data}: {err.strip()}")
    return int(out.split()[0].split("=")[1])


def main(scn):
    master = scn.master("master", STORE, TABLES).start()
    slaves = [scn.slave(f"slave{i}", STORE, master).start() for i in (1, 2)]
    for s in slaves:
        s.wait_log(r"FULL sync complete")

    def spawn_writer(count):
        return scn.spawn([harness.WRITER, "counter", "--data", master.data, "--count", str(count),
                          "--pause-ms", "3", "--every", "1"])

    def finish(writer):
        try:
            out, err = writer.communicate(timeout=120)
        except Exception:  # noqa: BLE001
            fail("the writer did not finish within 120 s")
        check(writer.returncode == 0, f"the writer exited {writer.returncode}: {err.decode().strip()}")
        say(out.decode().strip())

    writer = spawn_writer(PHASES[0])
    readers = [harness.Poller(lambda d=s.data: counter_of(d), interval=0.1).start() for s in slaves]

    def head_at_least(n):
        harness.wait_until(f"the master's head to reach {n}", lambda: seq(master.data) >= n, timeout=60)

    # 1. SIGKILL a slave while it streams; restart it while the writer goes on.
    slave1 = slaves[0]
    harness.wait_until("slave1 to apply 300 changes", lambda: seq(slave1.data) >= 300, timeout=60)
    check(writer.poll() is None, "the writer finished before the slave was killed")
    slave1.kill()
    killed_at = seq(slave1.data)
    say(f"slave1 killed (SIGKILL) at position {killed_at} while streaming (master head {seq(master.data)})")
    head_at_least(killed_at + 300)
    mark = slave1.mark()
    slave1.start()
    slave1.wait_log(r"resumes INCREMENTAL after (\d+)", since=mark)
    resumed = int(slave1.wait_log(r"resumes INCREMENTAL after (\d+)", since=mark).group(1))
    check(resumed == killed_at, f"slave1 resumed after {resumed}, its position when killed was {killed_at}")
    say(f"slave1 restarted and resumed INCREMENTAL after {resumed} (master head {seq(master.data)})")
    finish(writer)

    # 2. SIGKILL the master while it streams; a second writer keeps committing to its directory.
    writer = spawn_writer(PHASES[1])
    head_at_least(seq(master.data) + 200)
    marks = [s.mark() for s in slaves]
    check(writer.poll() is None, "the writer finished before the master was killed")
    master.kill()
    down_at = seq(master.data)
    say(f"master killed (SIGKILL) at head {down_at} while streaming; slaves at "
        f"{', '.join(str(seq(s.data)) for s in slaves)}")
    head_at_least(down_at + 300)
    master.restart_on_same_port()
    say(f"master restarted on {master.address()} at head {seq(master.data)}")
    for s, m in zip(slaves, marks):
        got = s.wait_log(r"resumes INCREMENTAL after (\d+)", since=m)
        say(f"{s.name} resumed INCREMENTAL after {got.group(1)}")

    finish(writer)
    harness.converge(master, slaves, timeout=60)
    for s, r in zip(slaves, readers):
        seen = [c for _, c in r.stop()]
        check(not r.errors, f"a reader of {s.name} saw an inconsistent state: {r.errors[0] if r.errors else ''}")
        check(all(a <= b for a, b in zip(seen, seen[1:])), f"{s.name}'s counter went back: {seen}")
        check(len(set(seen)) >= 3, f"the reader of {s.name} saw too few states to mean anything: {sorted(set(seen))}")
        final = counter_of(s.data)
        check(final == TRANSACTIONS, f"{s.name} ends with counter {final}, expected {TRANSACTIONS}")
        say(f"{s.name}: {len(seen)} observations of {len(set(seen))} different states, each a consistent prefix "
            f"(no change lost, none applied again), counter never went back; final counter {final}")
        fulls = s.count(r"FULL sync complete")
        check(fulls == 1, f"{s.name} made {fulls} FULL syncs; only its first connection should have")
    say("each slave made only its first FULL sync; every restart resumed INCREMENTAL")
    master.stop()
    for s in slaves:
        s.stop()


if __name__ == "__main__":
    harness.run(main)
