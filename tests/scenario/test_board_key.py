#!/usr/bin/env python3
"""Issue 14: every board has its own long-term key, made on first start, owner-only.

A master and a slave start under umask 000 (the packaged unit's UMask=0007 is stricter; 000 is
the worst case): each makes board.key in its data directory, mode 0600, 36 bytes. The console's
`status` shows the key's fingerprint, the same one the log announced, different per board, and
the same after a restart (the key is kept, not made again). No log holds the key's secret bytes.

A key file that group or others may read is refused at start: the daemon exits 1 with a reason
naming the file and its mode, and starts again once the file is 0600. A file that is not a
possync key (cut short) is refused the same way, never silently replaced.
"""

import os
import re
import stat
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNCD, check, console, run_tool, say  # noqa: E402

STORE = "store-board-key"
TABLES = ["menu"]
CONSOLE = r"Daemon: console on socket"


def key_path(board):
    return os.path.join(board.data, "board.key")


def status(board, sock):
    ok, lines = console(sock, "status")
    check(ok, f"{board.name}: status failed: {lines}")
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def logged_fingerprint(board):
    found = re.findall(r"board key: fingerprint ([0-9a-f]{16})", board.text())
    check(found, f"{board.name}: no 'board key: fingerprint' line in its log")
    return found[-1]


def refused_start(board, why):
    """Starts `board`'s command by hand: it must exit 1 with a reason that contains `why`."""
    cmd = board.command()
    rc, out, err = run_tool(cmd, timeout=30, check_rc=False)
    lines = [line for line in err.splitlines() if line.strip()]
    last = lines[-1] if lines else "(nothing)"
    say(f"{board.name} with {why}: exit {rc}: {last}")
    check(rc == 1, f"{board.name} started with {why} (exit {rc}): {err.strip()}")
    check("board.key" in last, f"{board.name}'s reason does not name board.key: {last}")
    return last


def main(scn):
    old_umask = os.umask(0)
    try:
        master = scn.master("master", STORE, TABLES, args=["--console", scn.path("master.sock")]).start()
        slave = scn.slave("slave", STORE, master, args=["--console", scn.path("slave.sock")]).start()
    finally:
        os.umask(old_umask)
    slave.wait_log(r"FULL sync complete")
    master.wait_log(CONSOLE)
    slave.wait_log(CONSOLE)

    prints = {}
    for board, sock in ((master, scn.path("master.sock")), (slave, scn.path("slave.sock"))):
        st = os.stat(key_path(board))
        check(stat.S_ISREG(st.st_mode), f"{board.name}: board.key is not a regular file")
        check(stat.S_IMODE(st.st_mode) == 0o600,
              f"{board.name}: board.key has mode {stat.S_IMODE(st.st_mode):04o} under umask 000, not 0600")
        check(st.st_size == 36, f"{board.name}: board.key holds {st.st_size} bytes, not 36")
        shown = status(board, sock).get("key")
        check(shown == logged_fingerprint(board),
              f"{board.name}: status key {shown} is not the logged fingerprint {logged_fingerprint(board)}")
        prints[board.name] = shown
        secret = open(key_path(board), "rb").read()[4:]
        for name in ("master", "slave"):
            text = open(scn.path(name + ".log"), "rb").read()
            check(secret.hex().encode() not in text and secret not in text,
                  f"the key of {board.name} appears in {name}.log")
    check(prints["master"] != prints["slave"], "two boards have the same key")
    say(f"keys: master {prints['master']}, slave {prints['slave']} (0600, 36 bytes)")

    # Kept across a restart.
    slave.stop()
    slave.start()
    slave.wait_log(CONSOLE, since=slave.start_offset)
    check(status(slave, scn.path("slave.sock")).get("key") == prints["slave"], "the slave's key changed on restart")

    # Readable by others: refused with the mode; usable again at 0600, with the same key.
    slave.stop()
    for mode in (0o640, 0o604):
        os.chmod(key_path(slave), mode)
        reason = refused_start(slave, f"board.key mode {mode:04o}")
        check(f"{mode:04o}" in reason, f"the reason does not name mode {mode:04o}: {reason}")
    os.chmod(key_path(slave), 0o600)
    slave.start()
    slave.wait_log(CONSOLE, since=slave.start_offset)
    check(status(slave, scn.path("slave.sock")).get("key") == prints["slave"], "the key changed after the chmod")
    slave.stop()

    # Not a possync key: refused, left alone for the operator (never replaced by a new key).
    with open(key_path(slave), "r+b") as f:
        f.truncate(20)
    refused_start(slave, "a board.key cut to 20 bytes")
    check(os.path.getsize(key_path(slave)) == 20, "the damaged board.key was replaced")
    master.expect_alive()
    say("a key others may read and a damaged key are refused at start with the reason")


if __name__ == "__main__":
    harness.run(main)
