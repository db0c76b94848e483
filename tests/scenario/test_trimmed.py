#!/usr/bin/env python3
"""Scenario 4: the master's change log is trimmed past a slave's position: that slave gets FULL.

The master keeps at most 20 log entries (--log-max-entries 20), 50 even for connected slaves
that still need more (--log-hard-max-entries 50).
  A. slave1 is stopped; the master commits 300 transactions and trims its log past slave1's
     position; slave1 returns: the master sends FULL ("position was trimmed"), slave1 converges.
  B. The contrast: slave2 is stopped for 5 transactions (still in the log): it resumes INCREMENTAL.
  C. slave3 stays connected but is frozen (SIGSTOP) while the master commits 300 transactions:
     its pin holds the log only up to the hard limit, then the entries it needs go; on SIGCONT it
     gets a new FULL sync and converges.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-trimmed"
TABLES = ["ctr"]
MAX_ENTRIES, HARD_MAX = 20, 50


def write(master, count):
    return harness.writer("counter", "--data", master.data, "--count", str(count))


def log_state(data):
    i = harness.info(data)
    return int(i["log_first"]), int(i["log_entries"]), int(i["seq"])


def main(scn):
    # Long link timeouts: slave3's freeze in part C must not end its link by a timeout.
    timeouts = ["--timeout-ms", "15000"]
    master = scn.master("master", STORE, TABLES, args=["--log-max-entries", str(MAX_ENTRIES),
                                                       "--log-hard-max-entries", str(HARD_MAX), *timeouts]).start()
    slaves = [scn.slave(f"slave{i}", STORE, master, args=timeouts).start() for i in (1, 2, 3)]
    slave1, slave2, slave3 = slaves
    for s in slaves:
        s.wait_log(r"FULL sync complete")
    write(master, 50)
    harness.converge(master, slaves)

    # A. Offline past the trimmed log.
    slave1.stop()
    pos1 = int(harness.info(slave1.data)["seq"])
    say(write(master, 300))
    # Trims run every second, also while the writes go on: the log passing slave1's position
    # may come from a trim before the last writes, so wait for one after them (within the bound).
    harness.wait_until(f"the master to trim its log past slave1's position {pos1} and to its bounds",
                       lambda: log_state(master.data)[0] > pos1 + 1 and log_state(master.data)[1] <= HARD_MAX,
                       timeout=30)
    first, entries, head = log_state(master.data)
    check(entries <= HARD_MAX, f"the master keeps {entries} log entries, over the hard limit {HARD_MAX}")
    say(f"slave1 stopped at {pos1}; the master's log now holds {first}..{head} ({entries} entries)")
    mmark, smark = master.mark(), slave1.mark()
    slave1.start()
    master.wait_log(r"FULL sync \(slave's position was trimmed from the log", since=mmark)
    slave1.wait_log(r"sends a FULL sync", since=smark)
    slave1.wait_log(r"FULL sync complete", since=smark)
    harness.converge(master, slaves)
    say("A: slave1 returned behind the log and got a FULL sync (master: position was trimmed from the log)")

    # B. Offline for less than the log holds: INCREMENTAL.
    slave2.stop()
    pos2 = int(harness.info(slave2.data)["seq"])
    write(master, 5)
    first, entries, head = log_state(master.data)
    check(first <= pos2 + 1, f"the log ({first}..{head}) no longer holds slave2's next change {pos2 + 1}")
    smark = slave2.mark()
    slave2.start()
    slave2.wait_log(r"resumes INCREMENTAL after " + str(pos2), since=smark)
    harness.converge(master, slaves)
    check(slave2.count(r"FULL sync complete", since=smark) == 0, "slave2 made a FULL sync although the log held its changes")
    say(f"B: slave2, offline for 5 changes (log {first}..{head}), resumed INCREMENTAL after {pos2}")

    # C. Connected but frozen past the hard limit.
    mmark, smark = master.mark(), slave3.mark()
    slave3.proc.send_signal(signal.SIGSTOP)
    try:
        pos3 = int(harness.info(slave3.data)["seq"])
        say(write(master, 300))
        # As in A: a trim while the writes went on may pass slave3's position and still leave more
        # than the hard limit; wait for one after them.
        harness.wait_until(f"the master to trim past frozen slave3's position {pos3} (hard limit {HARD_MAX})",
                           lambda: log_state(master.data)[0] > pos3 + 1 and log_state(master.data)[1] <= HARD_MAX,
                           timeout=30)
        first, entries, head = log_state(master.data)
        check(entries <= HARD_MAX, f"the master keeps {entries} log entries, over the hard limit {HARD_MAX}")
        check(slave3.count(r"link to master", since=smark) == 0, "slave3's link ended while it was frozen")
        say(f"slave3 frozen (SIGSTOP) at {pos3}; the master trimmed to {first}..{head} ({entries} entries) anyway")
    finally:
        slave3.proc.send_signal(signal.SIGCONT)
    in_session = r"seq \d+ is no longer in the log, new FULL sync"
    m = master.wait_log(in_session + r"|FULL sync \(slave's position was trimmed from the log", since=mmark)
    slave3.wait_log(r"FULL sync complete", since=smark)
    harness.converge(master, slaves)
    how = "on its open link" if "no longer in the log" in m.group(0) else "after reconnecting"
    say(f"C: after SIGCONT slave3 got a new FULL sync {how} (master: '{m.group(0)}') and converged")
    for s in (slave2, slave3):
        s.expect_alive()
    master.stop()
    for s in slaves:
        s.stop()


if __name__ == "__main__":
    harness.run(main)
