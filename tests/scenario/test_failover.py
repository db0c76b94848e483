#!/usr/bin/env python3
"""Issue 13: the master board dies; a slave is promoted from its console; the old master comes
back and rejoins (real daemons on 127.0.0.1, static discovery).

1. Master + slaves A (started with --listen: promotable) and B, 300 orders replicated. While A
   streams from the live master, `promote` without confirm is refused and says what it sees.
2. Both slaves stop; the master commits 5 more orders (the orphans: no slave has them) and is
   SIGKILLed. The slaves start again, still pointing at the dead master.
3. An order taken on A while the master is dead waits in A's outbox. `promote` on B is refused
   (no --listen). `possync console SOCKET promote` on A (no confirm needed: nothing says the
   master is alive) answers, applies A's queued order, and A restarts itself as master: its log
   says the role comes from the data directory, `possync info` shows term 1, a two-record history
   and the fork at seq 300; the console shows role master, term 1. A takes writes.
4. A restarted with the same command line (--role slave) is master again.
5. B, pointed at A (--new-generation accept: resuming across the fork is the sync layer's part,
   not counted here), converges with A.
6. The old master starts again with its directory (--role master, and --master A for after its
   rejoin): `rejoin` on its console exports its generation's log to possync-export-*.tsv in its
   data directory (the orphans are in it, with their keys in hex) and restarts it as a slave of A;
   it converges with A (the orphans are gone from its tables: only the export holds them), and a
   restart with --role master leaves it a slave.
"""

import glob
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNC, check, possync, run_tool, say, wait_until  # noqa: E402
from writes import clients, device, facts  # noqa: E402

STORE = "shop"
CONSOLE = r"Daemon: console on socket"  # a started daemon answers on its console from here
TABLES = ["orders"]
ORDERS = 300
ORPHANS = 5


def info(data):
    return facts(possync(data, "info"))


def has_key(data, table, key):
    rc, _, _ = run_tool([POSSYNC, "--data", data, "get", table, key], check_rc=False)
    return rc == 0


def console_fields(sock, line):
    ok, lines = harness.console(sock, line)
    check(ok, f"console {line!r} on {sock} failed: {lines}")
    return facts("\n".join(lines))


def master_port(board, since):
    """The port a board that became master listens on (its `listening on` line after `since`)."""
    m = board.wait_log(r"Daemon: listening on 127\.0\.0\.1:(\d+)", since=since, timeout=30)
    return int(m.group(1))


def main(scn):
    old = scn.master("master", STORE, TABLES, args=["--console", scn.path("master.sock")])
    old.start()
    old.wait_log(CONSOLE)
    a = scn.slave("a", STORE, old, args=["--console", scn.path("a.sock"), "--listen", "127.0.0.1:0"])
    b = scn.slave("b", STORE, old, args=["--console", scn.path("b.sock"), "--new-generation", "accept"])
    a.start()
    a.wait_log(CONSOLE)
    b.start()
    b.wait_log(CONSOLE)
    possync(old.data, "load", "--records", str(ORDERS), "--value-size", "24", "--table", "orders")
    harness.converge(old, [a, b], timeout=60)
    fork = int(info(a.data)["seq"])

    # 1. A live master is a reason to ask for confirmation.
    wait_until("a streaming", lambda: console_fields(scn.path("a.sock"), "status").get("link") == "streaming")
    ok, lines = harness.console(scn.path("a.sock"), "promote")
    check(not ok and lines and "may still be alive" in lines[0] and "promote confirm" in lines[0],
          f"promote next to a live master was not refused with what it sees: {lines}")
    check(info(a.data)["role"] == "slave", "a refused promote changed the role")
    say(f"promote beside a live master: {lines[0]}")

    # 2. Orphans: committed on the master after both slaves left.
    a.stop()
    b.stop()
    for i in range(1, ORPHANS + 1):
        possync(old.data, "put", "orders", f"orphan{i}", f"lost {i}")
    old_head = int(info(old.data)["seq"])
    check(old_head == fork + ORPHANS, f"master head {old_head}, expected {fork} + {ORPHANS}")
    old.kill()
    a.start()
    a.wait_log(CONSOLE)
    b.start()
    b.wait_log(CONSOLE)

    # A till on A takes an order while the master is dead: it waits in A's outbox.
    queued = possync(a.data, "put", "orders", "queued1", "from a's till", "--no-wait").strip()
    check(queued.startswith("queued request "), f"a write on a while the master is dead: {queued!r}")

    # 3. Promotion.
    ok, lines = harness.console(scn.path("b.sock"), "promote confirm")
    check(not ok and lines and "--listen" in lines[0], f"promote without --listen: {lines}")
    since = a.mark()
    _, out, _ = run_tool([POSSYNC, "console", "--socket", scn.path("a.sock"), "promote"])
    check(out.startswith("promote: promoted: generation "), f"possync console ... promote answered {out!r}")
    check("; 1 own queued request(s) applied;" in out, f"a's queued order was not applied by promote: {out!r}")
    say(out.strip())
    a.wait_log(r"role master from the data directory \(promoted at term 1\); --role slave ignored", since=since)
    port = master_port(a, since)
    a.expect_alive()
    i = info(a.data)
    check(i["role"] == "master" and i["term"] == "1", f"after promote: {i}")
    check(re.search(rf"\(from [0-9a-f]{{16}} at {fork}\) term 1$", i["history"]), f"history: {i['history']}")
    check(i["role_from"].startswith("data directory"), f"role_from: {i['role_from']}")
    st = console_fields(scn.path("a.sock"), "status")
    check(st["role"] == "master" and st["term"] == "1", f"console status after promote: {st}")
    check(has_key(a.data, "orders", "queued1"), "a's queued order is not in its table after promote")
    row = clients(a.data).get(device(a.data))  # applied once, recorded as a master records a slave's
    check(row is not None and row[0] == 1 and row[2] == 1 and row[3] == 0, f"a's own client record: {row}")
    for k in range(1, 4):
        possync(a.data, "put", "orders", f"after{k}", f"new master {k}")
    check(not has_key(a.data, "orders", "orphan1"), "the promoted slave has an orphan it never received")

    # 4. The role lives in the data directory.
    a.stop()
    a.start()
    a.wait_log(CONSOLE)
    a.wait_log(r"role master from the data directory \(promoted at term 1\); --role slave ignored")
    port = master_port(a, a.start_offset)
    a.port = port
    check(info(a.data)["role"] == "master", "a restarted with --role slave is not master")
    say(f"a restarted with --role slave: master on port {port}")

    # 5. B follows the new master.
    b.stop()
    b.args = [a.address() if x == old.address() else x for x in b.args]
    b.start()
    b.wait_log(CONSOLE)
    harness.converge(a, [b], timeout=60)

    # 6. The old master returns and rejoins.
    old.args += ["--master", a.address()]
    old.start()
    old.wait_log(CONSOLE)
    ok, lines = harness.console(scn.path("master.sock"), "rejoin")
    check(ok and lines and lines[0].startswith("rejoin: exported "), f"rejoin answered {lines}")
    say(lines[0])
    exports = glob.glob(os.path.join(old.data, "possync-export-*.tsv"))
    check(len(exports) == 1, f"export files in {old.data}: {exports}")
    check(exports[0] in lines[0], f"the rejoin answer does not name {exports[0]}")
    text = open(exports[0]).read()
    for k in range(1, ORPHANS + 1):
        want = f"\tput\torders\t{f'orphan{k}'.encode().hex()}\t{f'lost {k}'.encode().hex()}\n"
        check(want in text, f"orphan{k} is not in the export file")
    check(f"{old_head}\tput\torders\t{b'orphan5'.hex()}" in text, "the last orphan does not carry its seq")
    # It comes back as a slave of A by itself (same pid: the daemon restarts itself).
    old.wait_log(r"role slave from the data directory \(rejoined\); --role master ignored")
    old.expect_alive()
    harness.converge(a, [b, old], timeout=60)
    check(not has_key(old.data, "orders", "orphan1"), "the rejoined board still holds an orphan in its tables")
    check(has_key(old.data, "orders", "after3"), "the rejoined board lacks the new master's writes")
    # A restart with its configuration (--role master) leaves it a slave. Its harness role says
    # slave so the harness does not wait for a `listening on` line; the command line says master.
    old.stop()
    old.role = "slave"
    old.start(extra=["--role", "master"])
    old.wait_log(CONSOLE)
    old.wait_log(r"role slave from the data directory \(rejoined after term 1\); --role master ignored")
    check(info(old.data)["role"] == "slave", "the rejoined board is not a slave after a restart")
    possync(a.data, "put", "orders", "last", "x")
    harness.converge(a, [b, old], timeout=60)


if __name__ == "__main__":
    harness.run(main)
