#!/usr/bin/env python3
"""Issue 13 (and issue 9's rule): promote runs its write transaction off the event loop.

LMDB has one writer lock per environment, shared by the daemon and every POS application. A
promotion is a write transaction (the new generation, then the board's own queued requests);
made on the loop, it froze the whole daemon for as long as a POS application held the lock:
no console, no heartbeats. Here the master dies, then a POS process on the promotable slave A
(scenario_writer hold) queues 2 orders and keeps a write transaction open. `promote confirm`
is typed on A's console: its answer waits for the lock, while `status` on a second console
session keeps answering (the old daemon did not answer at all until the lock was released).
Once the holder commits (its order is the third one queued), the promotion goes through,
applies all 3 queued orders exactly once and A restarts as master of term 1.
"""

import os
import re
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, possync, say  # noqa: E402
from writes import facts  # noqa: E402

STORE = "shop"
TABLES = ["orders"]
CONSOLE = r"Daemon: console on socket"
HOLD_S = 3.0


def main(scn):
    m = scn.master("master", STORE, TABLES).start()
    sock = scn.path("a.sock")
    a = scn.slave("a", STORE, m, args=["--console", sock, "--listen", "127.0.0.1:0"]).start()
    a.wait_log(CONSOLE)
    possync(m.data, "load", "--records", "50", "--value-size", "16", "--table", "orders")
    harness.converge(m, [a], timeout=60)
    m.kill()

    holder = scn.spawn([harness.WRITER, "hold", "--data", a.data, "--table", "orders", "--hold-ms", "60000",
                        "--before", "2"], stdin=subprocess.PIPE)
    line = holder.stdout.readline().decode().strip()
    check(line == "holding", f"scenario_writer hold printed {line!r}, not 'holding'")
    held_since = time.monotonic()

    answer = {}

    def promote():
        answer["reply"] = harness.console(sock, "promote confirm", timeout=60)
        answer["at"] = time.monotonic()

    t = threading.Thread(target=promote)
    t.start()
    rounds = 0
    while time.monotonic() - held_since < HOLD_S:
        ok, lines = harness.console(sock, "status", timeout=5)
        check(ok, f"a's console answered status with an error while promote waited: {lines}")
        check("reply" not in answer, f"promote answered while the writer lock was still held: {answer}")
        rounds += 1
        time.sleep(0.1)
    say(f"a's console answered status {rounds} times while promote waited for the writer lock ({HOLD_S} s)")
    holder.stdin.write(b"release\n")
    holder.stdin.close()
    rest = holder.stdout.read().decode()
    check(holder.wait(30) == 0 and "released" in rest, f"scenario_writer hold failed: {rest!r}")
    t.join(60)
    check("reply" in answer, "promote never answered after the lock was released")
    ok, lines = answer["reply"]
    check(ok and lines and lines[0].startswith("promote: promoted: generation "), f"promote answered {lines}")
    check("; 3 own queued request(s) applied;" in lines[0], f"not the 3 queued orders applied: {lines[0]}")
    say(f"{lines[0]} ({answer['at'] - held_since:.1f} s after the lock was taken)")
    a.wait_log(r"role master from the data directory \(promoted at term 1\); --role slave ignored")
    a.wait_log(CONSOLE, since=a.start_offset)
    i = facts(possync(a.data, "info"))
    check(i["role"] == "master" and i["term"] == "1", f"a after promote: {i}")
    held = possync(a.data, "get", "orders", "held").strip()
    check(held == "1", f"the held transaction's order is not in a's table: {held!r}")
    check(re.search(r"FENCED|Assertion|panic", a.text()) is None, "a's log shows a failure")


if __name__ == "__main__":
    harness.run(main)
