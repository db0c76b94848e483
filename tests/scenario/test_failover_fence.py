#!/usr/bin/env python3
"""Issue 13: an old master that comes back learns of the newer term from a slave's Hello and is
fenced (real daemons on 127.0.0.1, static discovery).

1. Master + slave A (--listen), 100 orders replicated; A stops, the master commits 5 orphans and
   is SIGKILLed; A starts again and is promoted from its console (term 1).
2. The old master starts again with its directory. A slave's Hello naming term 1 (wire_tool
   rogue-slave --term 1: the real slaves' Hello.term is the sync layer's part) reaches it: the
   Hello is refused ("superseded: ..."), the log says FENCED with the term and where it was seen,
   the console's status says FENCED, and a write on its directory is refused with the reason.
3. Restarted (--role slave on its command line even), it is still a fenced master: every Hello
   is refused, term 0 too.
4. `rejoin`: the export file holds the orphans; it comes back as a slave of A and converges.
"""

import glob
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
import peers  # noqa: E402
from harness import POSSYNC, WIRE_TOOL, check, possync, run_tool, say  # noqa: E402
from writes import facts  # noqa: E402

STORE = "shop"
CONSOLE = r"Daemon: console on socket"  # a started daemon answers on its console from here
TABLES = ["orders"]
ORPHANS = 5


def info(data):
    return facts(possync(data, "info"))


def hello(port, term):
    """A slave's Hello with `term` at 127.0.0.1:port; the first line the master answered."""
    p = subprocess.run([WIRE_TOOL, "rogue-slave", "--port", str(port), "--store", STORE, "--device", "probe",
                        "--term", str(term), "--timeout-ms", "5000"], stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=30)
    check(p.returncode == 0, f"wire_tool rogue-slave exited {p.returncode}: {p.stderr.decode().strip()}")
    return p.stdout.decode().strip().splitlines()[0]


def main(scn):
    old = scn.master("master", STORE, TABLES, args=["--console", scn.path("master.sock")])
    old.start()
    old.wait_log(CONSOLE)
    a = scn.slave("a", STORE, old, args=["--console", scn.path("a.sock"), "--listen", "127.0.0.1:0"])
    a.start()
    a.wait_log(CONSOLE)
    possync(old.data, "load", "--records", "100", "--value-size", "24", "--table", "orders")
    harness.converge(old, [a], timeout=60)
    a.stop()
    for i in range(1, ORPHANS + 1):
        possync(old.data, "put", "orders", f"orphan{i}", f"lost {i}")
    old.kill()
    a.start()
    a.wait_log(CONSOLE)
    since = a.mark()
    ok, lines = harness.console(scn.path("a.sock"), "promote")
    check(ok and lines[0].startswith("promote: promoted"), f"promote: {lines}")
    m = a.wait_log(r"Daemon: listening on 127\.0\.0\.1:(\d+)", since=since)
    a.port = int(m.group(1))
    check(info(a.data)["term"] == "1", "a is not at term 1")

    # 2. The old master returns (its slaves' addresses unchanged) and hears of term 1.
    # On its old port (as restart_on_same_port, which would also rewrite --master's address).
    old.args = [f"127.0.0.1:{old.port}" if x.startswith("127.0.0.1:") else x for x in old.args]
    old.args += ["--master", a.address()]
    old.start()
    old.wait_log(CONSOLE)
    check(hello(scn.sealed(old).port, 0).startswith("Welcome generation="), "the old master refused a term-0 Hello "
          "before it knew of term 1")
    answer = hello(scn.sealed(old).port, 1)
    check(not answer.startswith("Welcome generation="),
          "the old master accepted a Hello naming term 1: MasterSession::onHello must pass Hello.term to "
          "SessionHost::noteHelloTerm before admitHello")
    check(answer.startswith("Welcome refused") and "superseded: " in answer, f"a term-1 Hello got: {answer}")
    say(f"term-1 Hello: {answer}")
    old.wait_log(r"FENCED: store shop has a master of term 1 \(seen in the Hello of slave probe")
    i = info(old.data)
    check(i["fenced"].startswith("store shop has a master of term 1"), f"fenced in possync info: {i['fenced']}")
    check(i["highest_term_seen"] == "1", f"highest_term_seen: {i['highest_term_seen']}")
    ok, lines = harness.console(scn.path("master.sock"), "status")
    st = facts("\n".join(lines))
    check(ok and st["link"].startswith("FENCED: store shop has a master of term 1"), f"status: {st}")
    say(f"status link: {st['link']}")
    rc, _, err = run_tool([POSSYNC, "--data", old.data, "put", "orders", "late", "x"], check_rc=False)
    check(rc != 0 and "fenced" in err and "term 1" in err, f"a write on the fenced master: rc {rc}, {err.strip()}")

    # 3. Fenced across a restart, whatever --role says.
    old.stop()
    old.role = "slave"  # the harness then waits for no `listening on` line; the daemon is master
    i = old.args.index("--tables")
    del old.args[i:i + 2]  # a slave's command line has none (possyncd refuses it with --role slave)
    old.start()
    old.wait_log(CONSOLE)
    old.wait_log(r"role master from the data directory \(term 0; fenced: store shop has a master of term 1")
    m = old.wait_log(r"Daemon: listening on 127\.0\.0\.1:(\d+)")
    check(int(m.group(1)) == old.port, "the fenced master listens elsewhere")
    # The probe's key was admitted before the fence (a fenced master's pairing window admits
    # nobody: it writes nothing until rejoin).
    answer = hello(scn.sealed(old).port, 0)
    check(answer.startswith("Welcome refused") and "fenced: " in answer, f"a Hello to the fenced master: {answer}")

    # 4. rejoin.
    ok, lines = harness.console(scn.path("master.sock"), "rejoin")
    check(ok and lines[0].startswith("rejoin: exported "), f"rejoin: {lines}")
    exports = glob.glob(os.path.join(old.data, "possync-export-*.tsv"))
    check(len(exports) == 1, f"export files: {exports}")
    text = open(exports[0]).read()
    for k in range(1, ORPHANS + 1):
        check(f"\tput\torders\t{f'orphan{k}'.encode().hex()}\t" in text, f"orphan{k} is not in the export")
    old.wait_log(r"role slave from the data directory \(rejoined after term 1\)")
    harness.converge(a, [old], timeout=60)
    i = info(old.data)
    check(i["role"] == "slave" and i["fenced"] == "no", f"after rejoin: {i}")


if __name__ == "__main__":
    harness.run(main)
