#!/usr/bin/env python3
"""Scenario 1: one master and three slaves converge after 20,000 mixed changes.

The slaves connect to an empty master (FULL sync of nothing), then two writer processes write
10,000 operations each at the same time (PUT/DEL/CLEAR on binary keys of three watched tables
and one unwatched table, transactions of 1 to 1,000 operations) while the slaves stream.
Checks: every slave's digest equals the master's, every watched table is byte-identical in
mdb_dump, the unwatched table did not replicate, and no slave needed a second FULL sync.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-converge"
TABLES = ["menu", "orders", "stock"]
UNWATCHED = "local"


def main(scn):
    master = scn.master("master", STORE, TABLES).start()
    say(f"master listening on {master.address()}")
    slaves = [scn.slave(f"slave{i}", STORE, master).start() for i in (1, 2, 3)]
    for s in slaves:
        s.wait_log(r"FULL sync complete")
    say("3 slaves made their first FULL sync")

    writers = [scn.spawn([harness.WRITER, "mixed", "--data", master.data, "--ops", "10000", "--seed", str(seed),
                          "--tables", ",".join(TABLES + [UNWATCHED]), "--pause-ms", "3", "--every", "1"])
               for seed in (11, 12)]
    progress = harness.Poller(lambda: int(harness.info(slaves[0].data)["seq"]), interval=0.1).start()
    for w in writers:
        try:
            out, err = w.communicate(timeout=120)
        except Exception:  # noqa: BLE001
            harness.fail("a writer did not finish within 120 s")
        check(w.returncode == 0, f"writer exited {w.returncode}: {err.decode().strip()}")
        say(out.decode().strip())
    head = int(harness.info(master.data)["seq"])
    seen = sorted({seq for _, seq in progress.stop()})
    check(not progress.errors, f"reading {slaves[0].name}'s position failed: {progress.errors[:1]}")
    streaming = [seq for seq in seen if 0 < seq < head]
    check(streaming, f"{slaves[0].name} applied nothing while the writers ran (positions seen {seen}, head {head})")
    say(f"{slaves[0].name} applied changes while they were written: {len(streaming)} positions between 0 and {head}")
    for d in [master] + slaves:
        d.expect_alive()

    final = harness.converge(master, slaves, timeout=60)
    check(int(final.split("count=")[1]) > 0, "the master ended with no records: the writers wrote nothing")
    check(harness.mdb_dump(master.data, UNWATCHED) is not None, f"the master has no table {UNWATCHED}")
    for s in slaves:
        check(harness.mdb_dump(s.data, UNWATCHED) is None, f"unwatched table {UNWATCHED} reached {s.name}")
        fulls = s.count(r"FULL sync complete")
        check(fulls == 1, f"{s.name} made {fulls} FULL syncs, expected only the first one")
        check(s.count(r"link to master lost") == 0, f"{s.name} lost its link: {s.text()[-500:]}")
    say(f"unwatched table {UNWATCHED} stayed on the master; each slave made exactly one FULL sync, no link lost")
    for d in [master] + slaves:
        d.stop()
    say("all daemons stopped cleanly on SIGTERM")


if __name__ == "__main__":
    harness.run(main)
