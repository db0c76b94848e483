#!/usr/bin/env python3
"""Scenario: transactions larger than --max-frame replicate (issue 9, item 4).

--max-frame is a transport limit only. The master runs with --max-frame 65536, slave1 with the
same, slave2 with 16384 (smaller than the master's: the master must follow the slave's limit,
which Hello announces). Old behaviour: the slave refused the oversize frame, reconnected and
livelocked at that seq forever.
  A. FULL: a 100 KB record sits on the master before the slaves start: its chunk is larger than
     either slave's frame limit and travels as Fragments.
  B. INCREMENTAL: one 100 KB put; a 500 KB transaction of 50 records; a 3 MB transaction of 300
     records (46 times slave2's frame limit); all replicate, with no link lost and no FULL.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-big"
TABLES = ["big"]


def main(scn):
    master = scn.master("master", STORE, TABLES, args=["--max-frame", "65536", "--chunk-bytes", "32768"]).start()
    big = "x" * 100_000
    harness.possync(master.data, "put", "big", "before-full", big)
    harness.possync(master.data, "put", "big", "small", "y")
    slave1 = scn.slave("slave1", STORE, master, args=["--max-frame", "65536"]).start()
    slave2 = scn.slave("slave2", STORE, master, args=["--max-frame", "16384", "--chunk-bytes", "8192"]).start()
    slaves = [slave1, slave2]
    marks = [0, 0]  # each slave's log is new: count from its first line (a fast FULL is done before a mark)
    for s in slaves:
        s.wait_log(r"FULL sync complete")
    harness.converge(master, slaves)
    say("A: a FULL holding a 100 KB record reached slaves with 64 KiB and 16 KiB frame limits")

    harness.possync(master.data, "put", "big", "incremental", big)
    say(harness.possync(master.data, "load", "--table", "big", "--records", "50", "--value-size", "10000",
                        "--batch", "50", "--start", "1000"))
    say(harness.possync(master.data, "load", "--table", "big", "--records", "300", "--value-size", "10000",
                        "--batch", "300", "--start", "2000"))
    harness.possync(master.data, "put", "big", "after", "z")
    harness.converge(master, slaves)
    for s, m in zip(slaves, marks):
        check(s.count(r"link to master lost", since=m) == 0, f"{s.name} lost its link: {s.text(m)[-2000:]}")
        fulls = s.count(r"FULL sync complete", since=m)
        check(fulls == 1, f"{s.name} made {fulls} FULL syncs, not 1")
        check(harness.possync(s.data, "get", "big", "incremental").strip() == big,
              f"{s.name} holds another value for the 100 KB key")
    check(master.count(r"closing link") == 0, "the master closed a link")
    say("B: a 100 KB put and transactions of 500 KB and 3 MB replicated INCREMENTAL, no link lost")
    master.stop()
    for s in slaves:
        s.stop()


if __name__ == "__main__":
    harness.run(main)
