#!/usr/bin/env python3
"""Issue 13: optional automatic promotion (--auto-promote-after SECONDS), off by default.

Master M; slave A designated (--listen, --auto-promote-after 2); slave B not designated.
1. While A streams from M for twice the delay, A stays a slave: a live link is never a reason.
2. M is SIGKILLed. A promotes itself once no master was linked for 2 s: its log says why, it
   restarts in place as master of term 1 whose history forks at the last seq it had, and takes
   writes. B, not designated, stays a slave.
3. B, pointed at A, resumes INCREMENTAL across the fork (no FULL sync) and converges.
4. A designated board that never completed a FULL sync (empty, its master dead from the start)
   never promotes: its log says why it holds, and it stays an empty slave.
5. --auto-promote-after on a slave without --listen is refused at start with the reason.
"""

import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNCD, check, possync, run_tool, say, wait_until  # noqa: E402
from writes import facts  # noqa: E402

STORE = "shop"
CONSOLE = r"Daemon: console on socket"
TABLES = ["orders"]
ORDERS = 200
DELAY = 2
PROMOTING = r"no master linked for \d+ s: promoting this board \(--auto-promote-after 2\)"


def info(data):
    return facts(possync(data, "info"))


def main(scn):
    m = scn.master("master", STORE, TABLES, args=["--console", scn.path("master.sock")]).start()
    a = scn.slave("a", STORE, m, args=["--console", scn.path("a.sock"), "--listen", "127.0.0.1:0",
                                       "--auto-promote-after", str(DELAY)]).start()
    b = scn.slave("b", STORE, m, args=["--console", scn.path("b.sock")]).start()
    a.wait_log(r"auto-promotion: this board promotes itself after 2 s without a master")
    possync(m.data, "load", "--records", str(ORDERS), "--value-size", "24", "--table", "orders")
    harness.converge(m, [a, b], timeout=60)

    # 1. Linked: never promoted, however long.
    time.sleep(2 * DELAY + 1)
    check(a.count(PROMOTING) == 0 and info(a.data)["role"] == "slave", "a promoted itself beside a live master")
    fork = int(info(a.data)["seq"])

    # 2. The master dies.
    since_a, since_b = a.mark(), b.mark()
    t0 = time.monotonic()
    m.kill()
    a.wait_log(PROMOTING, since=since_a, timeout=30)
    a.wait_log(r"role master from the data directory \(promoted at term 1\); --role slave ignored", since=since_a)
    port = int(a.wait_log(r"Daemon: listening on 127\.0\.0\.1:(\d+)", since=since_a).group(1))
    took = time.monotonic() - t0
    a.expect_alive()
    i = info(a.data)
    check(i["role"] == "master" and i["term"] == "1", f"a after auto-promotion: {i}")
    check(re.search(rf"\(from [0-9a-f]{{16}} at {fork}\) term 1$", i["history"]), f"history: {i['history']}")
    say(f"a promoted itself {took:.1f} s after the master died (delay {DELAY} s, --timeout-ms 3000)")
    possync(a.data, "put", "orders", "after1", "taken on the new master")
    check(b.count(r"promoting this board", since=since_b) == 0 and info(b.data)["role"] == "slave",
          "b, not designated, promoted itself")

    # 3. B follows A with no FULL sync.
    b.stop()
    since_b = b.mark()
    b.args = [f"127.0.0.1:{port}" if x == m.address() else x for x in b.args]
    b.start()
    a.port = port
    harness.converge(a, [b], timeout=60)
    fulls = b.count(r"sends a FULL sync|FULL sync complete", since=since_b)
    check(fulls == 0, f"b took {fulls} FULL sync line(s) to follow the promoted board; it was at the fork")
    say(f"b follows the promoted board from seq {fork} with no FULL sync")

    # 4. Never synced: held, with the reason.
    c = scn.slave("c", STORE, m, args=["--listen", "127.0.0.1:0", "--auto-promote-after", "1"]).start()
    c.wait_log(r"auto-promotion held: this board never completed a FULL sync", timeout=30)
    check(info(c.data)["role"] == "slave", "a board that never synced promoted itself")
    c.stop()

    # 5. Designated without --listen.
    rc, _, err = run_tool([POSSYNCD, "--role", "slave", "--data", scn.path("d"), "--store", STORE, "--master",
                           a.address(), "--auto-promote-after", "5"], check_rc=False)
    check(rc != 0 and "--auto-promote-after needs --listen" in err, f"no --listen: exit {rc}: {err.strip()}")
    say("held when never synced; refused without --listen")


if __name__ == "__main__":
    harness.run(main)
