#!/usr/bin/env python3
"""Issue 10, deadlines and bounds: a FULL sync larger than the master announced is refused early.

A fake master welcomes a new slave with a FULL whose chunk 0 announces 5 records, then sends a
chunk of 2,000 records, and would go on until the slave's map is full. Before the fix the slave
applied every chunk it got (a rogue master could make it write its whole map to flash on every
connection). Now the slave refuses the FULL once it passes twice the announced records plus a
margin (1,024): it closes the link with TOO_LARGE, logs it, and its data directory holds nothing
of that FULL.
"""

import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, decode, say, wire  # noqa: E402
from peers import read_frame, read_frames_until_close  # noqa: E402

STORE = "store-endless"
GEN = "0123456789abcdef"


class EndlessFullMaster:
    def __init__(self):
        self.welcome = wire("welcome", "--generation", GEN, "--head", "5", "--mode", "full")
        self.chunk0 = wire("chunk", "--generation", GEN, "--seq", "5", "--number", "0", "--last", "0",
                           "--table", "menu", "--key", "a", "--value", "x", "--records", "5")
        self.chunk1 = wire("chunk", "--generation", GEN, "--seq", "5", "--number", "1", "--last", "0",
                           "--table", "menu", "--key", "k", "--value", "y" * 50, "--puts", "2000")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.answers, self.closed = None, None
        self.done = threading.Event()
        self.errors = []
        threading.Thread(target=self._serve, daemon=True).start()

    def address(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        self.listener.close()

    def _serve(self):
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        try:
            conn.settimeout(10)
            if read_frame(conn) is None:
                self.errors.append("no Hello")
                return
            conn.sendall(self.welcome + self.chunk0 + self.chunk1)
            frames = read_frames_until_close(conn, timeout=10)
            self.closed = frames is not None
            self.answers = [decode(f) for f in (frames or [])]
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))
        finally:
            conn.close()
            self.done.set()


def main(scn):
    fake = EndlessFullMaster()
    scn.servers.append(fake)
    # Sealed like any master (seal_tunnel in front): a new slave pairs with the first master it
    # meets, so this one gets as far as a FULL (a paired slave would refuse its key outright).
    slave = scn.slave("slave", STORE, scn.sealed_master(fake.port), args=["--timeout-ms", "15000"]).start()
    harness.wait_until("the fake master's link to end", fake.done.is_set, timeout=60)
    check(not fake.errors, f"the fake master failed: {fake.errors}")
    check(fake.closed, "the slave kept a FULL of 2,001 records that announced 5 (no close within 10 s)")
    check(any("TOO_LARGE" in a for a in fake.answers), f"the slave's answers: {fake.answers}")
    slave.wait_log(r"link to master lost: .*")
    info = harness.info(slave.data)
    check(info.get("synced") in ("0", "no", "false"), f"the slave says it is synced: {info}")
    check(harness.digest(slave.data).endswith("count=0"), f"the slave holds data: {harness.digest(slave.data)}")
    say(f"the slave refused the endless FULL: {[a for a in fake.answers if 'Error' in a]}; "
        f"its directory holds nothing of it ({harness.digest(slave.data)})")
    slave.stop()


if __name__ == "__main__":
    harness.run(main)
