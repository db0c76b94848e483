#!/usr/bin/env python3
"""Issue 9 item 2: a POS process holding LMDB's writer lock must not freeze the master.

LMDB has one writer lock per environment, shared by the daemon and every POS application. The
master used to open a write transaction on its event loop every second (log trimming), so a POS
process that kept a write transaction open for a few seconds stopped the whole daemon: no
heartbeats (every slave dropped its link on its timeout) and a silent console.

Here a helper (scenario_writer hold) commits a few transactions, so the log is over
--log-max-entries and a trim is due, then keeps a write transaction open while two slaves
stream. The test keeps asking the master's console; it lets the helper commit only after the
hold has outlasted the trim interval (1 s) plus twice --timeout-ms and the console has answered
after that. The old master stopped answering at its first trim of the hold (the console call
then fails after its 10 s bound). No slave link may drop; after the hold the held transaction
replicates and everything converges.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-writer-lock"
TABLES = ["ctr"]
TIMEOUT_MS = 1500
TRIM_INTERVAL_S = 1.0  # MasterConfig::trimIntervalMs
# How long the lock is held at least: a trim is due within TRIM_INTERVAL_S, and the slaves'
# timeouts would have ended their links twice over by then if the loop had stopped.
HOLD_S = TRIM_INTERVAL_S + 2 * TIMEOUT_MS / 1000
# Short link timeouts, so that a frozen loop is noticed well within the hold.
LINK = ["--heartbeat-ms", "300", "--timeout-ms", str(TIMEOUT_MS)]


def main(scn):
    sock = scn.path("master.sock")
    master = scn.master("master", STORE, TABLES,
                        args=["--console", sock, "--log-max-entries", "5", *LINK]).start()
    slaves = [scn.slave(f"slave{i}", STORE, master, args=LINK).start() for i in (1, 2)]
    for s in slaves:
        s.wait_log(r"FULL sync complete")
    harness.writer("counter", "--data", master.data, "--count", "10")
    harness.converge(master, slaves)
    marks = [s.mark() for s in slaves]
    ok, _ = harness.console(sock, "status")
    check(ok, "the master's console does not answer before the test starts")

    # The helper holds the lock until it reads a line (at most 120 s).
    holder = scn.spawn([harness.WRITER, "hold", "--data", master.data, "--table", "ctr",
                        "--hold-ms", "120000", "--before", "20"], stdin=subprocess.PIPE)
    line = holder.stdout.readline().decode().strip()
    check(line == "holding", f"scenario_writer hold printed {line!r}, not 'holding'")
    held_since = time.monotonic()
    say(f"another process holds the master's writer lock (--timeout-ms {TIMEOUT_MS})")

    answers = late_answers = 0
    while late_answers == 0:
        asked = time.monotonic()
        for command in ("status", "stats", "peers"):
            ok, lines = harness.console(sock, command, timeout=10)
            check(ok, f"the master's console answered {command!r} with an error: {lines}")
        check(not harness.readable(holder.stdout), "scenario_writer hold let the lock go by itself")
        answers += 1
        if asked - held_since >= HOLD_S:
            late_answers += 1
        time.sleep(0.1)
    say(f"the console answered {answers} rounds while the lock was held for "
        f"{time.monotonic() - held_since:.1f} s")
    holder.stdin.write(b"release\n")
    holder.stdin.close()
    rest = holder.stdout.read().decode()
    check(holder.wait(30) == 0 and "released" in rest, f"scenario_writer hold failed: {rest!r}")

    harness.converge(master, slaves)
    for s, mark in zip(slaves, marks):
        text = s.text(mark)
        check("connected to master" not in text and "link to master" not in text,
              f"{s.name} lost its link while the writer lock was held:\n{text[-2000:]}")
        check(s.count(r"connected to master at") == 1,
              f"{s.name} connected {s.count(r'connected to master at')} times, not once")
    ok, lines = harness.console(sock, "stats")
    check(ok, f"the master's console answered 'stats' with an error: {lines}")
    stats = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    check(stats.get("connects") == "2", f"the master accepted {stats.get('connects')} links, not 2")
    # The trim that was due during the hold ran on its worker once the lock was free.
    harness.wait_until("a log trim to complete", lambda: int(harness.info(master.data)["log_entries"]) <= 5,
                       timeout=20)
    say(f"master: {stats.get('log_trims')} log trims, {stats.get('connects')} links")
    master.expect_alive()


if __name__ == "__main__":
    harness.run(main)
