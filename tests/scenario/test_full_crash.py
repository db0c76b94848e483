#!/usr/bin/env python3
"""Scenario 2: SIGKILL of a slave in the middle of a FULL sync of 300,000 records.

The slave first syncs a small table (the OLD data set). Then the master loads 300,000 records
of 100 bytes into a second table and starts watching it: the master sends the slave a FULL
sync in small chunks. A reader polls the slave's data the whole time (one read transaction per
observation: position, and per table the entry count and a hash of every key and value).
The slave reaches the master through a relay that holds the snapshot after a quarter of it
(so "midway" is certain, not a race); the reader observes it there, then it is killed with
SIGKILL. Checks: the FULL had not completed and midway observations were all OLD; the killed slave's data is exactly the OLD set (observation,
digest, mdb_dump); after a restart it takes a FULL sync again and converges with the master;
every observation of the reader, before, during and after the kill, was entirely the OLD set
or entirely the NEW set, never a mix.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, fail, say  # noqa: E402

STORE = "store-full-crash"
SMALL, BIG = "menu", "orders"
BIG_RECORDS = 300000
VALUE_SIZE = 100


def received_bytes(daemon):
    """Bytes the process has read through read()-like calls (its socket reads included)."""
    with open(f"/proc/{daemon.proc.pid}/io") as f:
        for line in f:
            if line.startswith("rchar:"):
                return int(line.split()[1])
    fail(f"no rchar in /proc/{daemon.proc.pid}/io")


def classify(observation, old, new):
    if observation == old:
        return "old"
    if observation == new:
        return "new"
    fail(f"a reader saw a mix of the OLD and NEW data sets: {observation}\n  OLD {old}\n  NEW {new}")


def main(scn):
    mdir = scn.path("master")
    harness.possync(mdir, "watch", SMALL)
    harness.possync(mdir, "load", "--records", "2000", "--value-size", "50", "--table", SMALL)
    master = scn.master("master", STORE, [SMALL], args=["--chunk-bytes", "16384", "--window", "4"],
                        data=mdir).start()
    # The slave talks to the master through a relay that can hold the snapshot midway.
    proxy = scn.proxy(master)
    slave = scn.slave("slave", STORE, proxy).start()
    slave.wait_log(r"FULL sync complete")
    harness.converge(master, [slave])
    tables = [SMALL, BIG]
    old = harness.observe(slave.data, tables)
    old_digest = harness.digest(slave.data)
    old_small = harness.mdb_dump(slave.data, SMALL)
    check(f"{BIG}=absent" in old, f"the slave already has {BIG}: {old}")
    say(f"OLD data set on the slave: {old}")

    out = harness.possync(mdir, "load", "--records", str(BIG_RECORDS), "--value-size", str(VALUE_SIZE),
                          "--table", BIG, timeout=120)
    say(f"master: {out.strip()} (not watched yet: nothing streams)")
    reader = harness.Poller(lambda: harness.observe(slave.data, tables), interval=0.05).start()
    try:
        mmark, smark = master.mark(), slave.mark()
        quarter = BIG_RECORDS * VALUE_SIZE // 4
        rchar0 = received_bytes(slave)
        proxy.hold_after(quarter)
        harness.possync(mdir, "watch", f"{SMALL},{BIG}")
        new = harness.observe(mdir, tables)
        say(f"NEW data set on the master: {new}")
        master.wait_log(r"watched tables changed, new FULL sync", since=mmark)
        harness.wait_until("the relay to hold the snapshot after a quarter of it", proxy.holding.is_set, timeout=60)
        harness.wait_until("the slave to read that quarter", lambda: received_bytes(slave) - rchar0 >= quarter,
                           timeout=10, interval=0.02)
        held_from = len(reader.results)
        harness.wait_until("3 reader observations while the FULL sync is held midway",
                           lambda: len(reader.results) >= held_from + 3, timeout=10, interval=0.02)
        check(slave.count(r"FULL sync complete", since=smark) == 0, "the FULL sync completed while it was held")
        during = [classify(o, old, new) for _, o in reader.results[held_from:]]
        check(all(k == "old" for k in during), f"a reader saw the NEW data set before the FULL sync ended: {during}")
        slave.kill()
        say(f"slave killed (SIGKILL) in the middle of the FULL sync, after receiving "
            f"{quarter / 1e6:.1f} MB of the snapshot; {len(during)} reader observations midway were all OLD")
        proxy.release()

        after = harness.observe(slave.data, tables)
        check(after == old, f"after the kill the slave holds {after}, expected the OLD set {old}")
        check(harness.digest(slave.data) == old_digest,
              f"digest after the kill {harness.digest(slave.data)} != OLD {old_digest}")
        check(harness.mdb_dump(slave.data, SMALL) == old_small, f"mdb_dump of {SMALL} changed by the killed FULL")
        check(harness.mdb_dump(slave.data, BIG) in (None, b""), f"the killed FULL left records in {BIG}")
        say(f"the killed slave still holds exactly the OLD set (observation, digest, mdb_dump of {SMALL} and {BIG})")

        smark = slave.mark()
        slave.start()
        slave.wait_log(r"sends a FULL sync", since=smark)
        slave.wait_log(r"FULL sync complete", since=smark, timeout=90)
        harness.converge(master, [slave], timeout=30)
        check(harness.observe(slave.data, tables) == new, "the slave's data differs from the NEW set")
    finally:
        observations = reader.stop()
    check(not reader.errors, f"a reader observation failed: {reader.errors[:2]}")
    kinds = [classify(o, old, new) for _, o in observations]
    check("old" in kinds and "new" in kinds, "the reader did not see both data sets")
    say(f"reader: {len(kinds)} observations, {kinds.count('old')} entirely OLD, {kinds.count('new')} entirely NEW, "
        f"none mixed")
    master.stop()
    slave.stop()


if __name__ == "__main__":
    harness.run(main)
