#!/usr/bin/env python3
"""Issue 9 item 12: `--master HOST:PORT` with a host name connects (it used to pass validation
and --check-config, then never connect, with nothing in the log).

  A. A slave given `--master localhost:PORT` (localhost comes from /etc/hosts: no DNS traffic)
     resolves it, connects and syncs; its log says which address it reached.
  B. A slave given a name whose port is closed says so, naming the host, in its log and in the
     console's `waiting` line, and keeps retrying; once a master listens there it syncs.
  C. Bad --master text is refused by --check-config with the reason, as by the daemon.
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-master-name"
TABLES = ["menu"]


class Named:
    """Stands in for a master in Scenario.slave(): the address is a host name."""

    def __init__(self, host, port):
        self.host, self.port = host, port

    def address(self):
        return f"{self.host}:{self.port}"


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(scn):
    # A. localhost:PORT.
    master = scn.master("master", STORE, TABLES).start()
    harness.possync(master.data, "put", "menu", "soup", "4.50")
    slave = scn.slave("slave", STORE, Named("localhost", master.port)).start()
    slave.wait_log(r"FULL sync complete")
    slave.wait_log(rf"connected to master at 127\.0\.0\.1:{master.port}")
    harness.possync(master.data, "put", "menu", "tea", "2.00")
    harness.converge(master, [slave])

    # B. A name whose port nobody listens on yet: a reason that names it, then a sync.
    port = free_port()
    sock = scn.path("late.sock")
    late = scn.slave("late", STORE, Named("localhost", port), args=["--console", sock]).start()
    late.wait_log(rf"connect to master: localhost:{port}: connect 127\.0\.0\.1:{port}: connection refused")

    def waiting():
        ok, lines = harness.console(sock, "status")
        line = next((l for l in lines if l.startswith("waiting")), "")
        return line if f"localhost:{port}" in line else None

    say("console: " + harness.wait_until("the console's waiting line to name localhost", waiting, timeout=20))
    master2 = scn.master("master2", STORE, TABLES, data=scn.path("master2"))
    master2.args = [a if a != "127.0.0.1:0" else f"127.0.0.1:{port}" for a in master2.args]
    master2.start()
    harness.possync(master2.data, "put", "menu", "cake", "3.00")
    late.wait_log(r"FULL sync complete")
    harness.converge(master2, [late])

    # C. --check-config refuses bad --master text and accepts a name.
    def check_config(address):
        return harness.run_tool([harness.POSSYNCD, "--role", "slave", "--data", scn.path("cc"), "--store", STORE,
                                 "--discovery", "static", "--master", address, "--check-config"],
                                check_rc=False)

    rc, out, err = check_config(f"localhost:{port}")
    check(rc == 0, f"--check-config refused --master localhost:{port}: {err.strip()}")
    for bad in ("localhost", "localhost:0", "localhost:65536", ":7700", "::1:7700", "[::1]"):
        rc, out, err = check_config(bad)
        check(rc != 0 and "--master" in err and bad in err,
              f"--check-config --master {bad!r}: exit {rc}, {err.strip()!r}")
    say("--check-config: names accepted, bad HOST:PORT text refused with the reason")


if __name__ == "__main__":
    harness.run(main)
