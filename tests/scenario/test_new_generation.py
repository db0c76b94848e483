#!/usr/bin/env python3
"""Scenario 5: the master's data directory is replaced; slaves keep their data until allowed.

Two slaves sync a master's data. The master is stopped, its directory moved away, and a fresh
directory with other data (same store id, a new generation) takes its place; the master comes
back on the same address. Checks: each slave logs "master data replaced ... keeping this slave's
data until the operator runs accept-generation", keeps reporting it, and its data stays exactly
what it was (digest, mdb_dump) even while the new master commits more; restarted with
--new-generation accept, slave1 takes a FULL sync and converges while slave2 still waits;
then slave2 is allowed too and both converge with the new master. The fresh directory keeps the
board's key (board.key): the slaves still trust the board, and the trust set (which the new data
does not hold) is made again by the pairing window.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-new-generation"
TABLES = ["menu", "orders"]
WAITING = r"master data replaced: .*keeping this slave's data until the operator runs accept-generation"


def snapshot(slave):
    return harness.digest(slave.data), [harness.mdb_dump(slave.data, t) for t in TABLES]


def main(scn):
    master = scn.master("master", STORE, TABLES).start()
    slaves = [scn.slave(f"slave{i}", STORE, master).start() for i in (1, 2)]
    for s in slaves:
        s.wait_log(r"FULL sync complete")
    say(harness.writer("mixed", "--data", master.data, "--ops", "3000", "--seed", "5", "--tables", ",".join(TABLES)))
    harness.converge(master, slaves)
    old_generation = harness.info(master.data)["generation"]
    kept = {s.name: snapshot(s) for s in slaves}

    master.stop()
    os.rename(master.data, scn.path("master-old"))
    harness.possync(master.data, "watch", ",".join(TABLES))
    harness.possync(master.data, "load", "--records", "700", "--value-size", "40", "--table", "menu")
    # The same board with its data replaced: its key stays (a board with another key is another
    # board, which the slaves would refuse as a rogue master: test_rogue_master.py).
    shutil.copy2(os.path.join(scn.path("master-old"), "board.key"), os.path.join(master.data, "board.key"))
    new_generation = harness.info(master.data)["generation"]
    check(new_generation != old_generation, "the fresh directory has the old generation")
    marks = [s.mark() for s in slaves]
    master.restart_on_same_port()
    say(f"master directory replaced: generation {old_generation} -> {new_generation}, back on {master.address()}")

    for s, m in zip(slaves, marks):
        line = s.wait_log(WAITING, since=m)
        s.wait_log(WAITING, count=2, since=m)  # it looks again later and still refuses
        say(f"{s.name} reports: {line.group(0)[:110]}...")
    say(harness.writer("mixed", "--data", master.data, "--ops", "500", "--seed", "6", "--tables", ",".join(TABLES)))
    harness.wait_until("slave1 to see the new master again after its writes",
                       lambda: slaves[0].count(WAITING, since=marks[0]) >= 3, timeout=30)
    for s, m in zip(slaves, marks):
        s.expect_alive()
        check(snapshot(s) == kept[s.name], f"{s.name}'s data changed while it waited for the operator: "
                                           f"{harness.digest(s.data)} (was {kept[s.name][0]})")
        check(s.count(r"FULL sync complete", since=m) == 0, f"{s.name} took the new generation without being allowed")
    say("both slaves kept their data (digest and mdb_dump unchanged) while the new master wrote more")

    slave1, slave2 = slaves
    slave1.stop()
    m1 = slave1.mark()
    slave1.start(["--new-generation", "accept"])
    slave1.wait_log(r"sends a FULL sync \(generation " + new_generation, since=m1)
    slave1.wait_log(r"FULL sync complete", since=m1)
    harness.converge(master, [slave1])
    check(snapshot(slave2) == kept[slave2.name], "slave2's data changed although only slave1 was allowed")
    say("slave1, restarted with --new-generation accept, took the new generation; slave2 still waits")

    slave2.stop()
    m2 = slave2.mark()
    slave2.start(["--new-generation", "accept"])
    slave2.wait_log(r"FULL sync complete", since=m2)
    harness.converge(master, slaves)
    check(harness.digest(slave1.data).startswith("position=" + new_generation), "slave1 is not on the new generation")
    master.stop()
    for s in slaves:
        s.stop()


if __name__ == "__main__":
    harness.run(main)
