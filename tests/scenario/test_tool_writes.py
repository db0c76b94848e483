#!/usr/bin/env python3
"""Issue 12: `possync put/add/del` on every board, `possync outbox`, without daemons.

A master directory and a slave directory made its synced slave by scenario_writer make-slave
(its watched tables, generation and seq). No daemon runs: scenario_writer forward plays the
link (the master applies each queued request through Store::applyRequest, the outcome settles
it on the slave), so the tool's side is tested apart from the daemon's forwarding.

- Master: put/add/del apply at once; add keeps an 8-byte big-endian signed counter; the
  conditions --if-absent/--if-present/--if-value hold or reject with exit 1 naming table and key
  and write nothing; bad usage exits 2.
- Slave: --no-wait queues ("queued request N") and `possync outbox` shows count, bytes, limit,
  oldest request and age, next request; a waiting write with nothing forwarding ends with exit 3
  and the pending message, and stays queued; a waiting write returns 0 (and its seq) once its
  request is applied, and 1 with "rejected: <reason>" when the master's condition fails; the
  last rejection shows in the outbox. Writes to the slave's own tables apply at once.
- Master: `possync outbox` lists the writing board with its last request, applied, rejected.
"""

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNC, check, possync, run_tool, say, wait_until, writer  # noqa: E402
from writes import facts  # noqa: E402


def tool(data, *args, **kw):
    """`possync --data DATA ARGS...` -> (rc, stdout, stderr), any exit code."""
    return run_tool([POSSYNC, "--data", data, *args], check_rc=False, **kw)


def counter(data, table, key):
    value = possync(data, "--hex", "get", table, key.encode().hex()).strip()
    check(len(value) == 16, f"{table}/{key} is not an 8-byte counter: {value}")
    return int.from_bytes(bytes.fromhex(value), "big", signed=True)


def check_master(master):
    possync(master, "watch", "stock,orders")
    possync(master, "put", "stock", "apples", "ignored")
    possync(master, "del", "stock", "apples")
    out = possync(master, "add", "stock", "apples", "10", "--seq")
    check(out.startswith("seq "), f"add --seq printed {out!r}")
    possync(master, "add", "stock", "apples", "-3")
    possync(master, "add", "stock", "apples", "+1")
    check(counter(master, "stock", "apples") == 8, "10 - 3 + 1 is not 8 on the master")

    rc, out, err = tool(master, "put", "--if-absent", "stock", "apples", "x")
    say(f"master put --if-absent on an existing key: exit {rc}: {err.strip()}")
    check(rc == 1 and err.count("\n") == 1, f"a failed --if-absent did not exit 1 with one line: {rc} {err!r}")
    check("rejected" in err and "stock" in err and "apples" in err,
          f"the rejection does not name table and key: {err.strip()}")
    check(counter(master, "stock", "apples") == 8, "a rejected put wrote")
    possync(master, "put", "--if-absent", "orders", "o1", "burger")
    rc, _, err = tool(master, "del", "--if-present", "orders", "o9")
    check(rc == 1 and "orders" in err and "o9" in err, f"del --if-present of a missing key: {rc} {err.strip()}")
    rc, _, err = tool(master, "put", "--if-value", "fries", "orders", "o1", "salad")
    check(rc == 1 and "rejected" in err, f"put --if-value with the wrong value: {rc} {err.strip()}")
    possync(master, "put", "--if-value", "burger", "orders", "o1", "salad")
    check(possync(master, "get", "orders", "o1").strip() == "salad", "put --if-value did not write")
    possync(master, "--hex", "add", "--if-present", "stock", "apples".encode().hex(), "-8")
    check(counter(master, "stock", "apples") == 0, "add --if-present did not reach 0")

    for args in (["add", "stock", "apples", "many"], ["add", "stock", "apples", "99999999999999999999"],
                 ["put", "--if-absent", "--if-present", "orders", "o2", "x"],
                 ["put", "--no-wait", "--wait-ms", "5", "orders", "o2", "x"],
                 ["put", "--wait-ms", "-1", "orders", "o2", "x"]):
        rc, _, err = tool(master, *args)
        say(f"{' '.join(args)}: exit {rc}: {err.strip()}")
        check(rc == 2 and err.strip(), f"bad usage {' '.join(args)} did not exit 2 with a reason: {rc}")
    check(tool(master, "get", "orders", "o2")[0] == 1, "bad usage wrote")

    # A value of any size and any bytes from a file or stdin (on the command line the kernel
    # limits one argument to about 128 KiB).
    big = bytes((i * 7 + 3) % 256 for i in range(300_000))
    path = os.path.join(os.path.dirname(master), "big.bin")
    with open(path, "wb") as f:
        f.write(big)
    possync(master, "put", "orders", "big", "--value-file", path)
    rc, out, err = tool(master, "--hex", "get", "orders", b"big".hex())
    check(rc == 0 and bytes.fromhex(out.strip()) == big, f"a 300 KB value from --value-file did not round-trip: {rc} {err}")
    p = subprocess.run([POSSYNC, "--data", master, "put", "orders", "piped", "--value-file", "-"],
                       input=b"burger\x00with a NUL", capture_output=True, timeout=30)
    check(p.returncode == 0, f"put --value-file - failed: {p.stderr!r}")
    check(possync(master, "get", "orders", "piped").strip() == "0x" + b"burger\x00with a NUL".hex(),
          "the value from stdin is not byte for byte")
    for args in (["put", "orders", "x"], ["put", "orders", "x", "v", "--value-file", path]):
        rc, _, err = tool(master, *args)
        check(rc == 2 and "--value-file" in err, f"{' '.join(args)}: exit {rc}: {err.strip()}")
    say("put --value-file: a 300 KB file and stdin, byte for byte")

    # --json for scripts: get, dump (one object per line), digest, info.
    import json
    g = json.loads(possync(master, "--json", "get", "orders", "piped"))
    check(g["table"] == "orders" and g["key"] == "piped" and bytes.fromhex(g["value_hex"]) == b"burger\x00with a NUL"
          and g["value"] == "0x" + g["value_hex"], f"get --json: {g}")
    rows = [json.loads(line) for line in possync(master, "--json", "dump", "orders").splitlines()]
    check(len(rows) == len(possync(master, "dump", "orders").splitlines()) and all(r["table"] == "orders" for r in rows),
          f"dump --json: {len(rows)} rows")
    d = json.loads(possync(master, "--json", "digest"))
    check(f"position={d['generation']}:{d['seq']} digest={d['digest']} count={d['count']}" ==
          possync(master, "digest").strip() and isinstance(d["seq"], int), f"digest --json {d}")
    i = json.loads(possync(master, "--json", "info"))
    check(i == {k: (int(v) if isinstance(i.get(k), int) else v) for k, v in facts(possync(master, "info")).items()},
          f"info --json differs from info: {i}")
    say("--json: get, dump, digest and info parse and agree with the text output")

    out = possync(master, "outbox")
    check(facts(out).get("role") == "master" and facts(out).get("clients") == "0",
          f"outbox on a master before any client: {out!r}")


def check_slave(scn, master, slave):
    say(writer("make-slave", "--data", slave, "--master", master))
    empty = facts(possync(slave, "outbox"))
    check(empty.get("role") == "slave" and empty.get("count") == "0" and empty.get("oldest_request") == "-",
          f"empty outbox: {empty}")

    out = possync(slave, "put", "--no-wait", "orders", "s1", "pizza").strip()
    check(out == "queued request 1", f"put --no-wait printed {out!r}")
    out = possync(slave, "del", "--no-wait", "orders", "gone").strip()
    check(out == "queued request 2", f"del --no-wait printed {out!r}")
    check(tool(slave, "get", "orders", "s1")[0] == 1, "a queued request shows in the slave's data")
    # The slave's own (unwatched) table: applied at once, nothing queued.
    check(possync(slave, "put", "till", "drawer", "open") == "", "a local write printed something")
    check(possync(slave, "get", "till", "drawer").strip() == "open", "a local write on a slave was not applied")

    box = facts(possync(slave, "outbox"))
    say(f"slave outbox after two queued requests: {box}")
    check(box.get("count") == "2" and int(box.get("bytes", "0")) > 0, f"outbox count/bytes: {box}")
    check(box.get("oldest_request") == "1" and box.get("next_request") == "3", f"outbox ids: {box}")
    check(box.get("oldest_age_ms", "-") != "-" and box.get("limit") == str(64 << 20), f"outbox age/limit: {box}")
    check(box.get("held") == "0" and box.get("last_rejection") == "-", f"outbox held/rejection: {box}")

    # Nothing forwards: the wait ends, the request stays queued.
    rc, out, err = tool(slave, "put", "--wait-ms", "200", "orders", "s2", "pasta")
    say(f"waiting put with no link: exit {rc}: {err.strip()}")
    check(rc == 3 and "pending: request 3 queued, not yet applied" in err,
          f"an unapplied wait did not exit 3 with the pending message: {rc} {err!r}")
    check(facts(possync(slave, "outbox")).get("count") == "3", "the pending request left the outbox")

    # The link applies the queue, in order.
    out = writer("forward", "--data", slave, "--master", master)
    say(f"forward: {out}")
    check(all(f"request {n}: committed" in out for n in (1, 2, 3)), f"forwarded requests: {out}")
    check(possync(master, "get", "orders", "s1").strip() == "pizza", "request 1 did not reach the master")
    check(possync(master, "get", "orders", "s2").strip() == "pasta", "request 3 did not reach the master")
    check(facts(possync(slave, "outbox")).get("count") == "0", "applied requests stayed in the outbox")

    # A waiting write returns once its request is applied here (and --seq gives the master's seq).
    p = scn.spawn([POSSYNC, "--data", slave, "put", "--seq", "--wait-ms", "60000", "orders", "s3", "soup"])
    wait_until("request 4 queued", lambda: facts(possync(slave, "outbox")).get("count") == "1", timeout=30)
    check(p.poll() is None, "the waiting put returned before its request was applied")
    writer("forward", "--data", slave, "--master", master)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        harness.fail("the waiting put did not return after its request was applied")
    say(f"waiting put after forwarding: exit {p.returncode}: {out.decode().strip()}")
    check(p.returncode == 0 and out.decode().startswith("seq "), f"waiting put: {p.returncode} {err.decode()!r}")

    # A condition the master finds false: the waiting write says rejected, exit 1, nothing applied.
    p = scn.spawn([POSSYNC, "--data", slave, "put", "--if-absent", "--wait-ms", "60000", "orders", "s1", "again"])
    wait_until("request 5 queued", lambda: facts(possync(slave, "outbox")).get("count") == "1", timeout=30)
    writer("forward", "--data", slave, "--master", master)
    try:
        out, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        harness.fail("the waiting put did not return after its request was rejected")
    err = err.decode()
    say(f"rejected waiting put: exit {p.returncode}: {err.strip()}")
    check(p.returncode == 1 and "rejected: " in err and "orders" in err and "s1" in err,
          f"a rejected request: {p.returncode} {err!r}")
    check(possync(master, "get", "orders", "s1").strip() == "pizza", "a rejected request was applied")
    box = facts(possync(slave, "outbox"))
    check(box.get("count") == "0" and "request 5" in box.get("last_rejection", ""), f"outbox after rejection: {box}")

    out = possync(master, "outbox")
    say(f"master outbox:\n{out}")
    lines = out.splitlines()
    check(facts(out).get("clients") == "1", f"clients on the master: {out!r}")
    device = facts(possync(slave, "info")).get("device")
    row = [line.split() for line in lines if line.split()[:1] == [device]]
    check(len(row) == 1, f"the slave {device} is not listed once: {out!r}")
    # device, last_request, last_seq, applied, rejected: requests 1 to 5 were handled.
    check(row[0][1] == "5" and row[0][4] == "1", f"client row {row[0]}")


def check_slave_add(master, slave):
    # A slave's ADD queues like any write (the master computes the sum when it applies it).
    writer("make-slave", "--data", slave, "--master", master)
    out = possync(slave, "add", "--no-wait", "--if-present", "stock", "apples", "-1").strip()
    check(out == "queued request 1", f"add --no-wait on a slave printed {out!r}")
    rc, _, err = tool(slave, "add", "--wait-ms", "0", "stock", "apples", "-1")
    check(rc == 3 and "pending: request 2 queued" in err, f"add with no link: {rc} {err!r}")
    box = facts(possync(slave, "outbox"))
    check(box.get("count") == "2" and box.get("oldest_request") == "1", f"slave outbox after ADDs: {box}")


def main(scn):
    master = scn.path("master")
    check_master(master)
    check_slave(scn, master, scn.path("slave"))
    check_slave_add(master, scn.path("slave-add"))


if __name__ == "__main__":
    harness.run(main)
