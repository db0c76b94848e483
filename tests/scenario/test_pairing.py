#!/usr/bin/env python3
"""Issue 14: operator-confirmed pairing, the pairing window, factory provisioning, removal.

The master runs with --pair-window 0 (the product default): a board that is not in the store's
trust set gets nothing until the operator settles it on the master's console.

- Asking: a new slave links, is refused with NOT_PAIRED; `pair list` on the master and `status`
  on the slave show the same six-digit verification code. Its data directory holds no table of
  the store (no snapshot, no change, no table name reached it).
- Rejected: `pair reject` - it still gets nothing, and is no longer listed as asking.
- Accepted: `pair accept DEVICE` - it syncs at its next attempt (within a few seconds), FULL.
- Window: `pair open 30` - a new board is admitted and syncs without anyone accepting it.
- Provisioned: the master restarts with --trusted-keys (the board's key from `possync key`), the
  board with --master-key: it syncs on its first link.
- Upgrade: a board still on protocol 4 (a plaintext Hello) gets nothing and `pair list` names
  its address as one to upgrade, then pair.
- Removed: `pair remove DEVICE` cuts that board's link at once; it gets no later change, while
  the others do. The trust set itself replicates: every member's `pair list` shows the same keys.
"""

import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, console, digest, possync, say, wait_until, wire  # noqa: E402

STORE = "store-pairing"
TABLES = ["menu", "stock"]
CONSOLE = r"Daemon: console on socket"


def ask(sock, line):
    ok, lines = console(sock, line)
    check(ok, f"{line}: {lines}")
    return lines


def status(sock):
    return dict(line.split(": ", 1) for line in ask(sock, "status") if ": " in line)


def pair_rows(sock):
    """`pair list` rows as dicts (state, device, key, since_s, detail)."""
    lines = ask(sock, "pair list")
    rows = []
    for line in lines[2:]:  # "trust: ...", the header
        cells = line.split(None, 4)
        if len(cells) == 5:
            rows.append(dict(zip(("state", "device", "key", "since_s", "detail"), cells)))
    return rows


def empty_of_store(board):
    """The board holds no table of the store (only possync's own reserved databases)."""
    out = possync(board.data, "dump")
    return out.strip() == ""


def key_of(data):
    """(public key hex, fingerprint) from `possync key` (made when the board has none)."""
    out = possync(data, "key")
    key = re.search(r"^key ([0-9a-f]{64})$", out, re.M)
    fp = re.search(r"^fingerprint ([0-9a-f]{16})$", out, re.M)
    check(key and fp, f"possync key printed {out!r}")
    return key.group(1), fp.group(1)


def main(scn):
    msock = scn.path("master.sock")
    master = scn.master("master", STORE, TABLES, args=["--pair-window", "0", "--console", msock]).start()
    master.wait_log(CONSOLE)
    for i in range(20):
        possync(master.data, "put", "menu", f"dish{i}", f"secret-dish-{i}")
    possync(master.data, "add", "stock", "fries", "40")
    mkey, mfp = key_of(master.data)

    def slave(name, args=()):
        sock = scn.path(name + ".sock")
        s = scn.slave(name, STORE, master, args=["--device", name, "--console", sock, *args])
        return s, sock

    # --- Asking: NOT_PAIRED, the same code on both consoles, nothing replicated.
    a, asock = slave("kds-a")
    a.start()
    a.wait_log(r"NOT_PAIRED", timeout=20)
    rows = wait_until("kds-a listed as asking to pair",
                      lambda: [r for r in pair_rows(msock) if r["state"] == "pending" and r["device"] == "kds-a"])
    code = re.search(r"code (\d{6})", rows[0]["detail"]).group(1)
    trust = wait_until("kds-a's status shows its code",
                       lambda: (lambda t: t if code in t else None)(status(asock).get("trust", "")))
    say(f"kds-a asks to pair: code {code} on both consoles; slave says: {trust}")
    check("waiting to be paired" in trust, f"kds-a's trust line: {trust}")
    time.sleep(1.5)  # a few more attempts
    check(empty_of_store(a), f"kds-a got data before it was paired: {possync(a.data, 'dump')[:200]}")

    # --- A board still on protocol 4 (its plaintext Hello): listed as one to upgrade and pair.
    with socket.create_connection(("127.0.0.1", master.port), timeout=5) as sock:
        sock.sendall(wire("hello", "--store", STORE, "--device", "old-till", "--version", "4"))
        sock.settimeout(10)
        check(sock.recv(4096) == b"", "the master answered a protocol 4 board")
    rows = wait_until("the old board listed as needing an upgrade",
                      lambda: [r for r in pair_rows(msock) if r["state"] == "needs-upgrade"])
    check(rows[0]["device"] == "127.0.0.1", f"needs-upgrade row: {rows[0]}")
    say(f"a protocol 4 board: pair list says {rows[0]['state']} {rows[0]['device']}: {rows[0]['detail']}")

    # --- Rejected: still nothing, no longer asking.
    amark = a.mark()
    note = ask(msock, "pair reject kds-a")
    say(f"pair reject: {note}")
    # Refused at the handshake now (the master's log has it too, rate-limited per address).
    a.wait_log(r"link to master lost: the peer closed the link during the handshake", since=amark)
    time.sleep(2.5)
    check(not [r for r in pair_rows(msock) if r["device"] == "kds-a"], "kds-a still listed after pair reject")
    check(empty_of_store(a), "kds-a got data after it was rejected")
    a.stop()

    # --- Accepted: syncs at its next attempt.
    b, bsock = slave("till-b")
    b.start()
    wait_until("till-b asking", lambda: [r for r in pair_rows(msock) if r["device"] == "till-b"])
    check(empty_of_store(b), "till-b got data before it was accepted")
    accepted_at = time.monotonic()
    say(f"pair accept: {ask(msock, 'pair accept till-b')}")
    b.wait_log(r"FULL sync complete", timeout=20)
    harness.converge(master, [b])
    say(f"till-b synced {time.monotonic() - accepted_at:.1f} s after pair accept")
    check("paired" in status(bsock).get("trust", ""), f"till-b's trust line: {status(bsock).get('trust')}")

    # --- Window: admitted without anyone accepting.
    say(f"pair open: {ask(msock, 'pair open 30')}")
    c, csock = slave("kds-c")
    c.start()
    c.wait_log(r"FULL sync complete", timeout=20)
    master.wait_log(r"pairing window: admitted the board")
    say(f"pair close: {ask(msock, 'pair close')}")
    check(not [r for r in pair_rows(msock) if r["state"] == "pending"], "a board is still asking after the window")

    # --- Provisioned at the factory: keys made before the first start, given in the config.
    d_data = scn.path("hh-d")
    os.makedirs(d_data)
    dkey, dfp = key_of(d_data)
    master.stop()
    master.args += ["--trusted-keys", dkey]
    master.restart_on_same_port()
    master.wait_log(CONSOLE, since=master.start_offset)
    d, dsock = slave("hh-d", args=["--master-key", mkey])
    d.start()
    d.wait_log(r"FULL sync complete", timeout=20)
    members = {r["key"]: r for r in pair_rows(msock) if r["state"] == "member"}
    check(dfp in members and members[dfp]["detail"] == "provisioned", f"hh-d is no provisioned member: {members}")
    check(mfp in members and members[mfp]["detail"] == "self", f"the master is no member of its own set: {members}")
    for board in (b, c, d):
        harness.converge(master, [board])

    # The trust set replicates: every slave lists the same members as the master.
    want = sorted(members)
    for name, sock in (("till-b", bsock), ("kds-c", csock), ("hh-d", dsock)):
        got = wait_until(f"{name} holds the master's trust set",
                         lambda s=sock: (lambda k: k if k == want else None)(
                             sorted(r["key"] for r in pair_rows(s) if r["state"] == "member")))
        check(got == want, f"{name}'s trust set differs")
    say(f"trust set of {len(want)} members replicated to every slave")

    # --- Removed: link cut at once, no later change reaches it.
    mark = master.mark()
    say(f"pair remove: {ask(msock, 'pair remove till-b')}")
    master.wait_log(r"trust set: removed till-b .*1 link\(s\) cut", since=mark)
    before = digest(b.data)
    possync(master.data, "put", "stock", "after-removal", "42")
    harness.converge(master, [c, d])
    time.sleep(2)
    check(digest(b.data) == before, "till-b got a change after it was removed from the trust set")
    check(possync(b.data, "get", "stock", "after-removal", check_rc=False) != "42",
          "the removed board holds the later write")
    say("till-b removed: its link was cut, later changes reach only the members")
    for board in (master, b, c, d):
        board.expect_alive()


if __name__ == "__main__":
    harness.run(main)
