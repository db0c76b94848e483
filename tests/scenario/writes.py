"""Shared pieces of the issue 12 scenarios with real daemons (test_slave_writes.py,
test_write_crash.py, test_write_offline.py): a store of a master and slaves watching `orders` and
`stock`, the `scenario_writer orders` tills, and readers of what a board holds.

The tills write through the store API (Store::beginWrite), as a POS application does: on the
master a transaction applies at once; on a slave it becomes one request in the outbox, which the
slave's daemon forwards. `scenario_writer orders --out FILE` records, per transaction, whether it
was acknowledged (committed on the master and applied on the writing board), rejected, or still
queued when the wait ended.
"""

import os
import subprocess

import harness
from harness import POSSYNC, WRITER, check, fail, possync, say, wait_until

TABLES = ["orders", "stock"]
ITEMS_HEX = b"items".hex()


def facts(text):
    """`key: value` lines as a dict (table rows, with no ': ', are left out)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            out[key] = value
    return out


def device(data):
    return facts(possync(data, "info"))["device"]


def synced(data):
    return os.path.exists(os.path.join(data, "data.mdb")) and facts(possync(data, "info")).get("synced") == "yes"


def stock(data):
    """stock/items as the 8-byte big-endian signed integer ADD keeps (None when absent)."""
    rc, out, _ = harness.run_tool([POSSYNC, "--data", data, "--hex", "get", "stock", ITEMS_HEX], check_rc=False)
    if rc == 1:
        return None
    check(rc == 0 and len(out.strip()) == 16, f"stock/items on {data} is not an 8-byte counter: {out!r}")
    return int.from_bytes(bytes.fromhex(out.strip()), "big", signed=True)


def get(data, table, key):
    rc, out, _ = harness.run_tool([POSSYNC, "--data", data, "get", table, key], check_rc=False)
    return out.rstrip("\n") if rc == 0 else None


def orders(data):
    """The `orders` table as a dict key -> value (text keys and values)."""
    out = {}
    for line in possync(data, "dump", "orders").splitlines():
        key, _, value = line.partition("\t")
        check(key not in out, f"{data}: orders/{key} listed twice")
        out[key] = value
    return out


def outbox(data):
    return facts(possync(data, "outbox"))


def clients(data):
    """The master's `possync outbox` rows: device -> (last_request, last_seq, applied, rejected)."""
    rows = {}
    for line in possync(data, "outbox").splitlines():
        cells = line.split()
        if len(cells) == 5 and cells[1].isdigit():
            rows[cells[0]] = tuple(int(c) for c in cells[1:])
    return rows


def start_store(scn, slaves, master_args=(), slave_args=(), start_stock=None):
    """A started master (console socket scn.path('master.sock')) and `slaves` started slaves, all
    synced; stock/items = start_stock when given (written on the master with the tool)."""
    master = scn.master("master", "shop", TABLES, args=["--console", scn.path("master.sock"), *master_args])
    master.start()
    if start_stock is not None:
        possync(master.data, "add", "stock", "items", str(start_stock))
    boards = []
    for n in range(1, slaves + 1):
        s = scn.slave(f"till{n}", "shop", master, args=list(slave_args))
        s.start()
        boards.append(s)
    for s in boards:
        wait_until(f"{s.name} synced", lambda s=s: synced(s.data), timeout=60, interval=0.2)
        if start_stock is not None:
            wait_until(f"{s.name} has the stock", lambda s=s: stock(s.data) == start_stock, timeout=60)
    return master, boards


class Till:
    """One `scenario_writer orders` process on a board's directory."""

    def __init__(self, scn, board, prefix, count, *args):
        self.board, self.prefix, self.count = board, prefix, count
        self.out = scn.path(f"{prefix}.acks")
        self.proc = scn.spawn([WRITER, "orders", "--data", board.data, "--prefix", prefix, "--count", str(count),
                               "--out", self.out, *[str(a) for a in args]])
        self.summary = None

    def finish(self, timeout=120):
        """Waits for the writer; returns its summary as a dict (count, committed, rejected, ...)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            fail(f"the writer {self.prefix} on {self.board.name} did not finish within {timeout} s")
        check(self.proc.returncode == 0,
              f"the writer {self.prefix} on {self.board.name} exited {self.proc.returncode}: {err.decode().strip()}")
        line = out.decode().strip()
        say(f"{self.board.name}: {line}")
        self.summary = dict(f.split("=", 1) for f in line.split()[2:])
        return self.summary

    def acks(self):
        """The --out lines: key -> (outcome, rest)."""
        result = {}
        with open(self.out) as f:
            for line in f:
                key, outcome, rest = (line.rstrip("\n").split(" ", 2) + [""])[:3]
                result[key] = (outcome, rest)
        return result


def order_key(prefix, i):
    return f"{prefix}/{i:08d}"


def check_orders(data, name, expected):
    """`data`'s orders table holds exactly `expected` (key -> value): each order once, none lost,
    none extra."""
    got = orders(data)
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    wrong = [k for k in expected if k in got and got[k] != expected[k]]
    check(not missing, f"{name}: {len(missing)} orders lost, e.g. {missing[:3]}")
    check(not extra, f"{name}: {len(extra)} unexpected orders, e.g. {extra[:3]}")
    check(not wrong, f"{name}: {len(wrong)} orders with wrong values, e.g. {wrong[:3]}")
