#!/usr/bin/env python3
"""Scenario 6b: peers the master must refuse: a Hello of another store, a Hello of another
protocol version, and a real slave configured with another store id that keeps retrying.

For each raw client: the master answers with a refusal (Welcome refused, code WRONG_STORE or
VERSION), logs a reason naming the client's address, and closes the link. For the misconfigured
slave: it logs "master refused: ..." and retries; the master must not keep a socket per refused
attempt (its open file descriptors return to their count before the slave came). A real slave of
the right store keeps its link and keeps syncing throughout. Every problem found is listed before
the test fails.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import decode, say, wire  # noqa: E402
from peers import read_frame, read_frames_until_close  # noqa: E402

STORE = "store-wrong-store"
TABLES = ["menu"]


def open_fds(daemon):
    return len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))


def main(scn):
    problems = []
    master = scn.master("master", STORE, TABLES).start()
    slave = scn.slave("slave", STORE, master).start()
    slave.wait_log(r"FULL sync complete")
    smark = slave.mark()

    clients = [
        ("a valid Hello of another store", wire("hello", "--store", "another-store", "--device", "intruder"),
         "WRONG_STORE"),
        ("a Hello of protocol version 99", wire("hello", "--store", STORE, "--device", "time-traveller",
                                                "--version", "99"), "VERSION"),
    ]
    # Paired boards (seal_tunnel) that say the wrong things inside a sealed link: a stranger gets
    # no refusal at all, not even this one (test_bad_peers.py, part A0).
    tunnel = scn.sealed(master)
    for name, hello, code in clients:
        mmark = master.mark()
        sock = socket.create_connection(("127.0.0.1", tunnel.port), timeout=5)
        try:
            sock.sendall(hello)
            sock.settimeout(10)
            payload = read_frame(sock)
            answer = decode(payload) if payload else "nothing"
            if not answer.startswith(f"Welcome refused code={code}"):
                problems.append(f"{name}: the master answered {answer}, not a {code} refusal")
            closed = read_frames_until_close(sock, timeout=5) is not None
        finally:
            sock.close()
        logged = master.count(r"127\.0\.0\.1:\d+: closing link: refused", since=mmark)
        say(f"{name}: the master answered '{answer}'; link closed by the master: {closed}; "
            f"log lines naming the client: {logged}")
        if not closed:
            problems.append(f"{name}: the master sent its refusal but left the link open for 5 s")
        if not logged:
            problems.append(f"{name}: the master logged no refusal naming the client's address")

    # A real slave with the wrong store id, retrying every 100-200 ms.
    baseline = open_fds(master)
    mmark = master.mark()
    wrong = scn.slave("wrong-slave", "another-store", master,
                      args=["--backoff-min-ms", "100", "--backoff-max-ms", "200"]).start()
    wrong.wait_log(r"master refused: this master serves store", count=10, timeout=30)
    wrong.stop()
    attempts = wrong.count(r"master refused")
    time.sleep(0.5)
    deadline = time.monotonic() + 5
    while open_fds(master) > baseline and time.monotonic() < deadline:
        time.sleep(0.2)
    leaked = open_fds(master) - baseline
    logged = master.count(r"refused|another-store", since=mmark)
    say(f"misconfigured slave: {attempts} refused attempts; master log lines about them: {logged}; "
        f"master file descriptors {baseline} before, {baseline + leaked} after the slave stopped")
    if leaked > 0:
        problems.append(f"the master kept {leaked} sockets open after {attempts} refused attempts "
                        f"(they stay in CLOSE-WAIT: one leaked socket per refused Hello)")
    if logged == 0:
        problems.append("the master logged nothing about the refused slave")

    master.expect_alive()
    if slave.count(r"link to master", since=smark):
        problems.append("the real slave's link dropped")
    say(harness.writer("mixed", "--data", master.data, "--ops", "500", "--seed", "9", "--tables", ",".join(TABLES)))
    harness.converge(master, [slave])
    if problems:
        harness.fail("refused peers are mishandled:\n  - " + "\n  - ".join(problems))
    master.stop()
    slave.stop()


if __name__ == "__main__":
    harness.run(main)
