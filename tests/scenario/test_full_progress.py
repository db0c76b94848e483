#!/usr/bin/env python3
"""Issue 15: a FULL sync's progress on both consoles.

A master with 20,000 records in chunks of 16 KiB; a new slave reaches it through a relay that
holds the master -> slave stream after 400 KB, so the FULL stands still in the middle. The
master's `peers` then shows the slave as `full-sync chunk N, R of T records sent (P%)` (T: the snapshot's records) with
its lag unknown ("-", not 0: before, a receiving slave showed lag 0), and the slave's `status`
link as `receiving-full chunk N, R of T records received (P%)`. Released, the FULL completes
and the slave streams.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, console, possync, say  # noqa: E402

STORE = "store-full-progress"
RECORDS = 20000


def answer(sock, line):
    ok, lines = console(sock, line)
    check(ok, f"{line}: {lines}")
    return lines


def main(scn):
    msock, ssock = scn.path("master.sock"), scn.path("slave.sock")
    master = scn.master("master", STORE, ["menu"], args=["--chunk-bytes", "16384", "--console", msock]).start()
    possync(master.data, "load", "--records", str(RECORDS), "--value-size", "40", "--table", "menu")
    proxy = scn.proxy(master)
    proxy.hold_after(400 << 10)
    slave = scn.slave("slave", STORE, proxy, args=["--console", ssock, "--timeout-ms", "30000"]).start()
    harness.wait_until("the relay to hold the FULL", proxy.holding.is_set, timeout=30)
    slave.wait_log(r"Daemon: console on socket")

    def master_row():
        lines = answer(msock, "peers")
        return next((line for line in lines[1:] if "full-sync" in line), None)

    row = harness.wait_until("the master's peers to show the FULL's progress", master_row, timeout=15)
    # The announced count is the snapshot's: the table's records and possync's replicated ones
    # (the trust set, the writing boards).
    m = re.search(r"full-sync chunk (\d+), (\d+) of (\d+) records sent \((\d+)%\)", row)
    check(m and 0 < int(m.group(2)) < RECORDS <= int(m.group(3)) < RECORDS + 10, f"master peers row: {row}")
    cells = row.split()
    check(cells[3] == "-" and cells[4] == "-", f"the master shows a lag for a slave in its FULL: {row}")

    def slave_link():
        link = dict(line.split(": ", 1) for line in answer(ssock, "status") if ": " in line)["link"]
        return link if link.startswith("receiving-full chunk") else None

    link = harness.wait_until("the slave's status to show the FULL's progress", slave_link, timeout=15)
    s = re.search(r"receiving-full chunk (\d+), (\d+) of (\d+) records received \((\d+)%\)", link)
    check(s and 0 < int(s.group(2)) < RECORDS <= int(s.group(3)) < RECORDS + 10, f"slave status link: {link}")
    say(f"master peers: {' '.join(cells[5:])}; slave status: {link}")
    proxy.release()
    slave.wait_log(r"FULL sync complete", timeout=60)
    harness.converge(master, [slave])


if __name__ == "__main__":
    harness.run(main)
