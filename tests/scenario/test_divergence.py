#!/usr/bin/env python3
"""Scenario: a slave whose data diverged at the master's position detects it and heals (issue 10).

The issue's case: after a change forged or corrupted on the link, a slave resumed INCREMENTAL at a
position equal to the master's, with other data, and its console said `streaming`, lag 0. Here the
damage is made certain: the slave is stopped, `scenario_writer corrupt` changes one record of its
directory through the apply path (its digest follows the damaged data, its position stays the
master's), and the slave is started again.
Checks: the slave resumes INCREMENTAL at the master's head, then by itself (no operator, no new
write on the master) shows `diverged: ...` in the console's `status`, logs the divergence at error
level, counts it in `stats` (errors_diverged), takes a FULL sync, and converges (digest and
mdb_dump equal to the master's). Exactly one divergence FULL: no loop.
On the code before the master announced its digest, the slave stays `streaming` with another
digest and this test fails at "diverged".
The alarm stays on the console while the digests differ and, marked "healed", for 10 minutes after
they are equal again (here at once: the FULL's own Welcome carried the master's digest).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-diverge"
TABLES = ["menu", "orders"]
DIVERGED = r"diverged: at [0-9a-f]+:\d+ this slave's digest is"


def status(sock):
    ok, lines = harness.console(sock, "status")
    check(ok, f"status failed: {lines}")
    return "\n".join(lines)


def stat(sock, name):
    ok, lines = harness.console(sock, "stats")
    check(ok, f"stats failed: {lines}")
    for line in lines:
        parts = line.replace(":", " ").split()
        if parts and parts[0] == name:
            return int(parts[-1])
    return 0


def main(scn):
    master = scn.master("master", STORE, TABLES).start()
    say(harness.writer("mixed", "--data", master.data, "--ops", "800", "--seed", "5", "--tables", "menu,orders"))
    sock = scn.path("slave.console")
    slave = scn.slave("slave", STORE, master, args=["--console", sock]).start()
    slave.wait_log(r"FULL sync complete")
    harness.converge(master, [slave])
    check(stat(sock, "errors_diverged") == 0, "a divergence was reported on equal data")

    slave.stop()
    say(harness.writer("corrupt", "--data", slave.data, "--table", "menu", "--key", "forged", "--value", "x"))
    before = harness.digest(slave.data)
    want = harness.digest(master.data)
    check(before.split()[0] == want.split()[0] and before != want,
          f"the damage did not make a divergence at an equal position: {before} vs {want}")
    say(f"slave damaged behind its back: {before}, master {want}")

    mark = slave.mark()
    slave.start()
    slave.wait_log(r"resumes INCREMENTAL", since=mark)
    seen = harness.wait_until("the console to show diverged",
                              lambda: next((ln for ln in status(sock).splitlines() if "diverged:" in ln), None),
                              timeout=30, interval=0.1)
    say("console: " + seen.strip())
    slave.wait_log(r" error Sync: " + DIVERGED, since=mark)
    slave.wait_log(r"FULL sync complete", since=mark, timeout=60)
    harness.converge(master, [slave])
    check(stat(sock, "errors_diverged") == 1, f"errors_diverged is {stat(sock, 'errors_diverged')}, want 1")
    harness.wait_until("the alarm to say healed",
                       lambda: "; healed: digests equal again" in status(sock), timeout=30)
    check(slave.count(r"FULL sync complete", since=mark) == 1, "more than one FULL sync after the divergence")
    say("the slave detected the divergence by itself, raised the alarm, and healed with one FULL sync")


if __name__ == "__main__":
    harness.run(main)
