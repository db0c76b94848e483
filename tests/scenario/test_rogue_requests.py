#!/usr/bin/env python3
"""Issue 12: a rogue slave's WriteRequests at a real master are rejected with a reason and touch
nothing.

wire_tool rogue-slave plays the slave: a Hello resuming at the master's position, then
hand-built WriteRequests (wire::RequestWriter), one at a time, printing each WriteResult.

1. Honest requests first: request 1 (a put) and request 10 (a value of 200,000 bytes, over the
   master's --max-frame of 64 KiB, sent as Fragments) are COMMITTED with consecutive seqs.
2. Then, on a new link, with the master's digest, position (`possync info`) and client record
   (`possync outbox`) taken before: a put into the reserved table possync.meta, one into a table
   the master does not watch, a key over LMDB's key limit (more than the store accepts), an ADD
   without an 8-byte delta, a condition on an unknown table, a condition on a reserved table,
   a request of another generation, and request ids going backwards (5: never seen but lower
   than the last applied, 10 and 1: applied before). Each is answered: REJECTED with seq 0 and a
   reason naming the fault, or for a resent id its stored outcome (COMMITTED, the same seq) or a
   "handled before" rejection; never a second apply. The link stays up throughout.
   Afterwards the digest, position, log head and client record are unchanged and the unwatched
   table holds nothing of the rogue's.
3. A slave speaking protocol version 2 is refused with a reason naming both versions.
4. A peer that sends a full window of requests and hangs up, again and again, while a POS
   process holds LMDB's writer lock (the master's worker waits): the requests of a closed link
   not yet begun are dropped, not queued (the master's queue stays bounded; a slave resends on
   its next link). Once the lock is released, only the one request the worker had begun is
   applied, and a later request is answered.
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
import peers  # noqa: E402
from harness import WIRE_TOOL, check, digest, info, possync, run_tool, say  # noqa: E402

STORE = "store-rogue"
DEVICE = "rogue-till"
MAX_FRAME = 64 << 10
ROGUE_SEED = "5e" * 32


def rogue(master, lines, *extra):
    """Runs wire_tool rogue-slave against `master` with `lines` on stdin; its output lines."""
    position = digest(master.data).split()[0].partition("=")[2]
    args = [WIRE_TOOL, "rogue-slave", "--port", str(master.tunnel.port), "--store", STORE, "--device", DEVICE,
            "--resuming", position, "--max-frame", str(MAX_FRAME), "--timeout-ms", "20000", *extra]
    p = subprocess.run(args, input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, f"wire_tool rogue-slave exited {p.returncode}: {p.stderr.strip()}")
    out = p.stdout.splitlines()
    for line in out:
        say(f"  {line[:300]}")
    return out


def results(out):
    """{request id: (status, seq, reason)} of the WriteResult lines, in order of arrival."""
    found = []
    for line in out:
        m = re.match(r"WriteResult id=(\d+) status=(\w+) seq=(\d+) reason=(.*)$", line)
        if m:
            found.append((int(m.group(1)), m.group(2), int(m.group(3)), m.group(4)))
    return found


def client_record(master):
    out = possync(master.data, "outbox")
    rows = [line for line in out.splitlines() if DEVICE in line]
    return out, rows


def state(master):
    """What a rogue request must not change: digest line, position and log, the client record."""
    i = info(master.data)
    return {
        "digest": digest(master.data),
        "generation": i.get("generation"),
        "seq": i.get("seq"),
        "log": (i.get("log_first"), i.get("log_entries"), i.get("log_bytes")),
        "clients": client_record(master)[1],
    }


def honest(master):
    before = int(info(master.data)["seq"])
    out = rogue(master, ["1 put:orders:r1:first", f"10 big:orders:big:{200_000}"])
    check(out and out[0].startswith("Welcome generation="), f"no Welcome: {out[:2]}")
    got = results(out)
    check([(r[0], r[1]) for r in got] == [(1, "COMMITTED"), (10, "COMMITTED")],
          f"the honest requests were not both committed: {got}")
    check(got[0][2] == before + 1 and got[1][2] == before + 2, f"seqs {got} after {before}")
    check(possync(master.data, "get", "orders", "r1").strip() == "first", "request 1 was not applied")
    value = possync(master.data, "get", "orders", "big").strip()
    check(len(value) == 200_000, f"the fragmented request stored {len(value)} bytes")
    return got[0][2], got[1][2]


# (request line, the words its rejection must contain)
ROGUE = [
    ("11 put:possync.meta:generation:0", ["possync.meta"]),
    ("12 put:secret:k:stolen", ["secret", "not shared"]),
    ("13 bigkey:orders:600", ["key of 600 bytes", "limit"]),
    ("14 add4:stock:apples", ["ADD", "8-byte"]),
    ("15 absent:nosuch:k put:orders:r15:x", ["condition", "nosuch"]),
    ("16 present:possync.clients:x put:orders:r16:x", ["condition", "possync.clients"]),
    ("17 gen=other put:orders:r17:x", ["generation"]),
]


def rogue_requests(master, seq1, seq10):
    before = state(master)
    say(f"before: {before}")
    check(None not in before["log"], f"possync info shows no log bounds: {before}")
    check(before["clients"], f"the honest requests left no client record: {client_record(master)[0]!r}")
    lines = [line for line, _ in ROGUE] + ["5 put:orders:r5:back", "10 put:orders:big:again",
                                          "1 put:orders:r1:again"]
    out = rogue(master, lines)
    got = {r[0]: r for r in results(out)}
    check(not any(line.startswith(("Error", "closed", "timeout")) for line in out),
          f"the master dropped the rogue's link instead of answering: {out[-3:]}")
    for line, words in ROGUE:
        rid = int(line.split()[0])
        check(rid in got, f"request {rid} ({line}) got no WriteResult: {out}")
        _, status, seq, reason = got[rid]
        check(status == "REJECTED" and seq == 0, f"{line}: {status} seq {seq} ({reason})")
        for w in words:
            check(w in reason, f"{line}: the reason does not say '{w}': {reason}")
    # Backwards: never seen but below the last applied id -> handled before; applied ids -> their
    # stored outcome. Never a second apply.
    _, status, seq, reason = got[5]
    check(status == "REJECTED" and "handled before" in reason, f"request 5 (backwards): {got[5]}")
    check(got[10][1:3] == ("COMMITTED", seq10), f"request 10 resent: {got[10]}, first {seq10}")
    check(got[1][1:3] == ("COMMITTED", seq1), f"request 1 resent: {got[1]}, first {seq1}")

    after = state(master)
    check(after == before, f"rogue requests changed the master:\nbefore {before}\nafter  {after}")
    check(possync(master.data, "get", "orders", "r1").strip() == "first", "request 1 was applied again")
    check(len(possync(master.data, "get", "orders", "big").strip()) == 200_000, "request 10 was applied again")
    for key in ("r5", "r15", "r16", "r17"):
        rc, _, _ = run_tool([harness.POSSYNC, "--data", master.data, "get", "orders", key], check_rc=False)
        check(rc == 1, f"orders/{key} exists after a rejected request (exit {rc})")
    rc, _, _ = run_tool([harness.POSSYNC, "--data", master.data, "get", "secret", "k"], check_rc=False)
    check(rc != 0, "the unwatched table got the rogue's key")
    check(possync(master.data, "get", "secret", "own").strip() == "local", "the master's own table changed")


def old_version(master):
    before = state(master)
    out = rogue(master, ["20 put:orders:v2:x"], "--version", "2")
    check(out and out[0].startswith("Welcome refused code=VERSION"), f"a version 2 slave was not refused: {out}")
    m = re.search(r"protocol version 2\b.*\b(\d+)\)?$", out[0])
    check(m and m.group(1) != "2", f"the refusal does not name both versions: {out[0]}")
    check(not results(out), f"a refused slave got a WriteResult: {out}")
    check(state(master) == before, "a refused slave changed the master")


def closed_links_drop_their_queue(scn, master):
    hold = scn.spawn([harness.WRITER, "hold", "--data", master.data, "--table", "local", "--hold-ms", "60000",
                      "--before", "0"], stdin=subprocess.PIPE)
    check(hold.stdout.readline().decode().strip() == "holding", "scenario_writer hold did not start")
    applied_before = client_record(master)[1]
    window = [f"{100 + i} put:orders:q{100 + i}:x" for i in range(1, 65)]  # 2*kRequestWindow
    rounds = 5
    mark = master.mark()
    for _ in range(rounds):
        # The tool ends its side and returns once the master closed the link: the master has
        # handled the close of each link before the next one and before the lock is released.
        out = rogue(master, window, "--no-wait", "1")
        check(out[-1] == "sent 64", f"the rogue did not send its window: {out[-2:]}")
    closes = master.count(r"slave rogue-till at 127\.0\.0\.1:\d+: slave closed the link", since=mark)
    check(closes == rounds, f"the master logged {closes} closes of the rogue's {rounds} links")
    hold.stdin.write(b"go\n")
    hold.stdin.flush()
    hold.stdin.close()
    check(hold.wait(timeout=30) == 0, "scenario_writer hold failed")
    # Requests are applied in the order received: once this one is answered, none is left.
    got = results(rogue(master, ["200 put:orders:q200:x"]))
    check(got and got[0][:2] == (200, "COMMITTED"), f"a request after the hold: {got}")
    rows = client_record(master)[1]
    say(f"client record before {applied_before}, after {rows}")
    applied = int(rows[0].split()[3])
    check(applied == int(applied_before[0].split()[3]) + 2,
          f"requests of closed links were applied after they closed: {rows} (before {applied_before})")
    check(possync(master.data, "get", "orders", "q101").strip() == "x", "the begun request was not applied")
    rc, _, _ = run_tool([harness.POSSYNC, "--data", master.data, "get", "orders", "q102"], check_rc=False)
    check(rc == 1, "a request of a closed link that had not begun was applied")


def main(scn):
    # The rogue is a paired board (a compromised till, not a stranger: a stranger gets nothing,
    # test_pairing.py): its key is provisioned, so no pairing entry lands in the log mid-test.
    key, _ = peers.key_of(ROGUE_SEED)
    master = scn.master("master", STORE, ["orders", "stock"],
                        ["--max-frame", str(MAX_FRAME), "--pair-window", "0", "--trusted-keys", key]).start()
    master.tunnel = scn.sealed(master, seed=ROGUE_SEED, pairing=False)
    possync(master.data, "put", "orders", "o1", "burger")
    possync(master.data, "add", "stock", "apples", "10")
    possync(master.data, "put", "secret", "own", "local")  # the master's own, unwatched table
    seq1, seq10 = honest(master)
    rogue_requests(master, seq1, seq10)
    old_version(master)
    closed_links_drop_their_queue(scn, master)
    master.expect_alive()


if __name__ == "__main__":
    harness.run(main)
