#!/usr/bin/env python3
"""Issue 9 item 1: a data directory belongs to one daemon for its lifetime.

A master runs on DIR. A second master and a slave started on DIR must both exit 1 with a
one-line reason naming the running master's pid, without touching DIR: the master's role,
generation and position stay as they were (`possync info`). The possync tool keeps working
beside the daemon (it does not take the daemon's lock): put/get succeed and the write reaches
a real slave of the master.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNCD, check, info, possync, run_tool, say  # noqa: E402

STORE = "store-dir-owner"
TABLES = ["menu"]


def main(scn):
    master = scn.master("master", STORE, TABLES).start()
    slave = scn.slave("slave", STORE, master).start()
    slave.wait_log(r"FULL sync complete")
    possync(master.data, "put", "menu", "burger", "5.50")
    before = info(master.data)
    pid = str(master.proc.pid)

    intruders = [
        ("a second master", ["--role", "master", "--listen", "127.0.0.1:0", "--tables", "menu,other"]),
        ("a slave", ["--role", "slave", "--master", master.address()]),
    ]
    for name, args in intruders:
        rc, out, err = run_tool([POSSYNCD, *args, "--data", master.data, "--store", STORE, "--discovery", "static",
                                 "--sync", "no"], timeout=30, check_rc=False)
        lines = [line for line in err.splitlines() if line.strip()]
        say(f"{name} on the master's directory: exit {rc}: {lines[-1] if lines else '(nothing)'}")
        check(rc == 1, f"{name} on a running master's directory exited {rc}, not 1: {err.strip()}")
        check(lines and pid in lines[-1], f"{name}'s reason does not name the holder's pid {pid}: {err.strip()}")
        after = info(master.data)
        for key in ("role", "generation", "device", "watched", "synced"):
            check(after.get(key) == before.get(key),
                  f"{name} changed the master's {key}: {before.get(key)} -> {after.get(key)}")
        check(int(after["seq"]) >= int(before["seq"]), "the master's position went back")
    master.expect_alive()

    # The tool and the C API keep working beside the daemon.
    possync(master.data, "put", "menu", "fries", "2.10")
    check(possync(master.data, "get", "menu", "fries").strip() == "2.10", "possync get beside the daemon")
    check(possync(master.data, "get", "menu", "burger").strip() == "5.50", "possync get beside the daemon")
    harness.converge(master, [slave])
    check(possync(slave.data, "get", "menu", "fries").strip() == "2.10", "the slave did not get the tool's write")

    # The lock ends with the daemon: a new master starts on the directory once the first stopped.
    slave.stop()
    master.stop()
    master.start()
    check(info(master.data)["generation"] == before["generation"], "a restart on the same role changed generation")
    master.stop()


if __name__ == "__main__":
    harness.run(main)
