#!/usr/bin/env python3
"""Issue 10, memory: a rogue master that floods a slave with Pings and never reads the Pongs.

Before the fix the slave queued every Pong (1.3 GiB measured). Now every queued outbound byte
counts against the slave's bound (--send-buffer): the slave drops a master that does not read,
logs "the master does not read", counts errors_slow_reader, keeps its data, and its anonymous
memory stays bounded. Afterwards the slave is pointed back at the real master and converges.
"""

import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
import peers  # noqa: E402
from harness import check, say, wire  # noqa: E402
from peers import read_frame  # noqa: E402

STORE = "store-rogue"
TABLES = ["menu"]
ROGUE_SEED = "7a" * 32
SEND_BUFFER = 1 << 20        # the slave's --send-buffer in this test
RSS_BOUND_KIB = harness.rss_bound_kib(64 << 10)     # growth allowed during the flood (before the fix: GiBs)
FLOOD_SECONDS = 60.0  # the loop ends as soon as the slave drops the rogue


class RogueMaster:
    """Accepts a slave, welcomes it INCREMENTAL at its own position, then sends Pings as fast as
    the socket takes them and never reads. Counts links and bytes sent."""

    def __init__(self, generation, head):
        self.welcome = wire("welcome", "--generation", generation, "--head", str(head), "--mode", "incremental")
        self.pings = wire("ping") * 256
        # A tiny receive buffer set before listen() (accepted sockets inherit it, and the window
        # is fixed at the handshake): the slave's Pongs pile up in its own queue within a few
        # thousand Pings, not after the kernel's megabytes of loopback buffers.
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.links, self.sent, self.dropped = 0, 0, 0
        self.stop = threading.Event()
        self.errors = []
        threading.Thread(target=self._serve, daemon=True).start()

    def address(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        self.stop.set()
        self.listener.close()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.links += 1
            try:
                self._flood(conn)
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(repr(e))
            finally:
                conn.close()

    def _flood(self, conn):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # read nothing, hold little
        conn.settimeout(10)
        if read_frame(conn) is None:
            return
        conn.sendall(self.welcome)
        conn.settimeout(1)
        while not self.stop.is_set():
            try:
                self.sent += conn.send(self.pings)
            except socket.timeout:
                continue
            except OSError:  # the slave dropped us
                self.dropped += 1
                return


def main(scn):
    # The rogue holds a key of the store's trust set (provisioned, so the slave learns it from the
    # master): a member gone bad. A stranger is refused at the handshake (test_rogue_master.py).
    key, _ = peers.key_of(ROGUE_SEED)
    master = scn.master("master", STORE, TABLES, args=["--trusted-keys", key]).start()
    harness.possync(master.data, "put", "menu", "burger", "5")
    slave = scn.slave("slave", STORE, master).start()
    harness.converge(master, [slave])
    slave.stop()
    info = harness.info(slave.data)
    gen, pos = info["generation"], int(info["seq"])
    kept = harness.digest(slave.data)

    rogue = RogueMaster(gen, pos)
    scn.servers.append(rogue)
    victim = scn.slave("slave-vs-rogue", STORE, scn.sealed_master(rogue.port, seed=ROGUE_SEED), data=slave.data,
                       args=["--send-buffer", str(SEND_BUFFER), "--timeout-ms", "30000"]).start()
    victim.wait_log(r"resumes INCREMENTAL")
    pid = victim.proc.pid
    rss0 = peak = harness.rss_anon_kib(pid)
    until = time.monotonic() + FLOOD_SECONDS
    while time.monotonic() < until and rogue.dropped == 0:
        peak = max(peak, harness.rss_anon_kib(pid))
        check(peak - rss0 <= RSS_BOUND_KIB, f"the slave's RssAnon grew by {peak - rss0} KiB during the flood")
        time.sleep(0.05)
    check(not rogue.errors, f"the rogue master failed: {rogue.errors}")
    check(rogue.dropped >= 1, f"the slave never dropped a master that does not read "
                              f"({rogue.sent} bytes of Pings sent in {FLOOD_SECONDS} s)")
    victim.wait_log(r"the master does not read: \d+ bytes queued")
    victim.expect_alive()
    say(f"rogue master: {rogue.sent} bytes of Pings, dropped by the slave; slave RssAnon "
        f"{rss0} KiB -> peak {peak} KiB (+{peak - rss0} KiB, bound {RSS_BOUND_KIB} KiB)")
    rogue.close()
    victim.stop()
    check(harness.digest(slave.data) == kept, "the slave's data changed under the rogue master")

    # The slave, pointed back at its real master, carries on.
    harness.possync(master.data, "put", "menu", "fries", "3")
    back = scn.slave("slave-back", STORE, master, data=slave.data).start()
    harness.converge(master, [back])
    back.stop()
    master.stop()


if __name__ == "__main__":
    harness.run(main)
