#!/usr/bin/env python3
"""Scenario 6: bad peers. A master serving a real slave meets malformed clients; a real slave
meets a fake master that sends invalid change models.

A0. Strangers (a plaintext Hello, random bytes: no trust handshake) get not one byte back.
A. Bad clients (paired boards, through seal_tunnel) connect to a master that streams to a real slave: random bytes, a garbage payload
   in a valid frame, a zero length, an oversize length, a 16 MiB frame announced before any Hello
   (refused from its header: before the Hello a master takes frames of at most 64 KiB, it never
   reserves --max-frame for an unauthenticated peer), a Hello whose checksum does not match, a
   well-framed buffer that fails FlatBuffers verification, a truncated frame followed by close, a
   truncated frame followed by silence (a valid Hello of another store: test_wrong_store.py).
   Each expected error code is checked in the master's Error frame. For each, the master must
   log a reason naming that client's address and close that link only (the client sees the close); the real slave's
   link never drops, and it keeps syncing (more writes, convergence).
B. The real slave is pointed at a fake master (a Python listener on 127.0.0.1:0) that answers each
   Hello with a Welcome and then one invalid change model: a change for the reserved table
   possync.meta, a change model whose seq range is wider than the one transaction it carries
   (what one flipped bit in last_seq looked like), a FULL whose chunk 1 is older than its
   chunk 0, a seq gap, another generation, a frame that fails verification. For each, the
   slave must close the link and reconnect (a new Hello that still reports its unchanged
   position), and its database must stay as it was (digest, mdb_dump, position). Finally a valid
   change model from the same fake master is applied: the rejections were for the faults.
"""

import os
import random
import re
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
import peers  # noqa: E402
from harness import check, decode, say, wire  # noqa: E402
from peers import frame, frame_header, read_frame, read_frames_until_close, xxh32  # noqa: E402

STORE = "store-bad-peers"
TABLES = ["menu", "orders"]
FAKE_SEED = "fa" * 32


def bad_clients():
    rng = random.Random(20240601)
    hello = wire("hello", "--store", STORE)
    payload = hello[16:]
    # The Python framing (peers.py) and the firmware's agree byte for byte.
    check(frame(payload) == hello, f"peers.frame() differs from the firmware's frame: {frame(payload).hex()} "
                                   f"vs {hello.hex()}")
    flipped = bytearray(hello)
    flipped[len(hello) - 9] ^= 0x04  # inside the payload: only the checksum can tell
    junk = rng.randbytes(300)
    return [
        # (name, bytes to send, then: "close" | "keep", the Error code the master must send or None)
        ("random bytes", rng.randbytes(4096), "keep", "VERIFY"),
        ("garbage payload in a valid frame", frame(junk), "keep", "VERIFY"),
        ("zero length", frame_header(0, xxh32(b"")) + payload, "keep", "PROTOCOL"),
        ("oversize length", frame_header(0xfffffff0, xxh32(payload)) + payload, "keep", "TOO_LARGE"),
        ("a 16 MiB frame announced before any Hello", frame_header(16 << 20, 0) + payload, "keep", "TOO_LARGE"),
        ("a Hello whose checksum does not match", bytes(flipped), "keep", "VERIFY"),
        ("well-framed buffer that fails verification", wire("unverifiable"), "keep", "VERIFY"),
        ("truncated frame, then close", hello[:len(hello) // 2], "close", None),
        ("truncated frame, then silence", hello[:len(hello) // 2], "keep", "TIMEOUT"),
    ]


def strangers(scn, master):
    """Peers without a handshake (a stranger's plaintext, random bytes) get nothing: not one byte
    back, the link closed, the failure logged by the master's guard."""
    rng = random.Random(7)
    mark = master.mark()
    for name, data in (("a plaintext Hello (no handshake)", wire("hello", "--store", STORE)),
                       ("random bytes", rng.randbytes(4096))):
        with socket.create_connection(("127.0.0.1", master.port), timeout=5) as sock:
            sock.sendall(data)
            got = b""
            sock.settimeout(10)
            try:
                while chunk := sock.recv(65536):
                    got += chunk
            except ConnectionResetError:
                pass
        check(got == b"", f"A0. {name}: the master answered a stranger with {len(got)} bytes")
        say(f"A0. {name}: nothing sent back, link closed")
    # Logged once for the burst (rate-limited: a stranger hammering the port must not flood the log).
    line = master.wait_log(r"trust handshake with 127\.0\.0\.1:\d+ failed: ([^\n]*)", since=mark, timeout=15)
    say(f"A0. master: '{line.group(1)}'")


def part_a(scn, master, slave):
    smark = slave.mark()
    strangers(scn, master)
    # The bad clients below are paired boards (through seal_tunnel): malformed frames inside
    # a sealed link must be refused as before.
    tunnel = scn.sealed(master)
    for name, data, then, code in bad_clients():
        mmark = master.mark()
        sock = socket.create_connection(("127.0.0.1", tunnel.port), timeout=5)
        try:
            sock.sendall(data)
            if then == "close":
                sock.close()
            line = master.wait_log(r"slave (?:\S+ at )?127\.0\.0\.1:\d+: ([^\n]*)", since=mmark, timeout=15)
            if then == "keep":
                frames = read_frames_until_close(sock, timeout=10)
                check(frames is not None, f"{name}: the master logged '{line.group(1)}' but left the link open")
                answers = [decode(f) for f in frames]
                check(any(a.startswith(f"Error code={code} ") for a in answers),
                      f"{name}: the master answered {answers}, expected an Error with code {code}")
            else:
                answers = []
        finally:
            sock.close()
        master.expect_alive()
        say(f"A. {name}: master: '{line.group(1)}'; link closed" + (f"; it sent {answers}" if answers else ""))
    slave.expect_alive()
    check(slave.count(r"link to master", since=smark) == 0,
          f"the real slave's link dropped during the bad clients:\n{slave.text(smark)[-800:]}")
    say(harness.writer("mixed", "--data", master.data, "--ops", "2000", "--seed", "3", "--tables", ",".join(TABLES)))
    harness.converge(master, [slave])
    check(slave.count(r"FULL sync complete") == 1, "the real slave needed another FULL sync")
    say("A. the real slave kept its link through all bad clients and kept syncing")


class FakeMaster:
    """Listens on 127.0.0.1:0. Connection i gets a Welcome and then script[i]'s frame; the last
    entry (the valid change) goes out once go_valid is set, to the first connection after it,
    and connections before that get nothing. Records each Hello and each link's answers."""

    def __init__(self, script, generation, head):
        self.script, self.generation, self.head = script, generation, head
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.hellos, self.answers, self.closed_by_slave = [], [], []
        self.go_valid = threading.Event()
        self.errors = []
        # Built before any slave connects: wire_tool is a process (a sanitized one in build-san)
        # and on a loaded machine starting it between the Hello and the answer can pass the
        # slave's 3 s Welcome deadline (then a case tests the deadline, not its frame).
        self.welcomes = {mode: wire("welcome", "--generation", generation, "--head", str(head), "--mode", mode)
                         for mode in ("incremental", "full")}
        threading.Thread(target=self._serve, daemon=True).start()

    def address(self):
        return f"127.0.0.1:{self.port}"

    def close(self):
        self.go_valid.set()
        self.listener.close()

    def _serve(self):
        i = 0
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            try:
                self._one(conn, i)
            except Exception as e:  # noqa: BLE001 - reported by the test
                self.errors.append(f"link {i}: {e!r}")
            finally:
                conn.close()
            i += 1

    def _one(self, conn, i):
        conn.settimeout(10)
        payload = read_frame(conn)
        if payload is None:
            return
        self.hellos.append(decode(payload))
        last = len(self.script) - 1  # the valid change: only once the test has checked the slave
        if i >= last and not self.go_valid.is_set():
            # No Welcome: the slave's Welcome deadline closes the link and it asks again.
            # (Holding this link until go_valid instead raced that deadline on a loaded machine.)
            read_frames_until_close(conn, timeout=20)
            return
        name, frame, mode = (self.script[min(i, last)] + ("incremental",))[:3]
        conn.sendall(self.welcomes[mode] + frame)
        frames = read_frames_until_close(conn, timeout=10 if name != "valid" else 2)
        self.closed_by_slave.append(frames is not None)
        self.answers.append([decode(f) for f in (frames or [])])


def part_b(scn, master, slave):
    slave.stop()
    before = harness.info(slave.data)
    gen, pos = before["generation"], int(before["seq"])
    kept = (harness.digest(slave.data), [harness.mdb_dump(slave.data, t) for t in TABLES])
    nxt = str(pos + 1)
    script = [
        ("a change for the reserved table possync.meta",
         wire("change", "--generation", gen, "--first", nxt, "--last", nxt, "--table", "possync.meta",
              "--key", "seq", "--value", "99999999")),
        ("a change model claiming seqs it does not carry (one transaction, range of 2^40+1)",
         wire("change", "--generation", gen, "--first", nxt, "--last", str(pos + 1 + (1 << 40)),
              "--table", "menu", "--key", "range", "--value", "x")),
        ("a FULL whose chunk 1 was read before chunk 0 (the replay after it would miss changes)",
         wire("chunk", "--generation", gen, "--seq", str(pos + 10), "--number", "0", "--last", "0", "--table", "menu",
              "--key", "c0", "--value", "x")
         + wire("chunk", "--generation", gen, "--seq", str(pos + 9), "--number", "1", "--last", "1", "--table", "menu",
                "--key", "c1", "--value", "x"), "full"),
        ("a seq gap", wire("change", "--generation", gen, "--first", str(pos + 5), "--last", str(pos + 5),
                           "--table", "menu", "--key", "gap", "--value", "x")),
        ("another generation", wire("change", "--generation", "0123456789abcdef", "--first", nxt, "--last", nxt,
                                    "--table", "menu", "--key", "gen", "--value", "x")),
        ("a frame that fails verification", wire("unverifiable")),
        ("valid", wire("change", "--generation", gen, "--first", nxt, "--last", nxt, "--table", "menu",
                       "--key", "from-the-fake", "--value", "applied")),
    ]
    invalid = len(script) - 1
    fake = FakeMaster(script, gen, pos + 1)
    scn.servers.append(fake)  # closed at cleanup
    # The fake master holds a key of the store's trust set (provisioned on the real master, so
    # replicated to the slave): a member gone bad, not a stranger (a stranger is refused before
    # any frame: test_rogue_master.py).
    front = scn.sealed_master(fake.port, seed=FAKE_SEED)
    # A Welcome deadline of 10 s: under ASan on a loaded machine the tunnel and the slave can take
    # more than the default 3 s, and a case would then test the deadline, not its frame.
    victim = scn.slave("slave-vs-fake", STORE, front, data=slave.data,
                       args=["--timeout-ms", "10000", "--hello-timeout-ms", "10000"]).start()
    harness.wait_until(f"the slave to reconnect after {invalid} invalid change models",
                       lambda: len(fake.hellos) > invalid or fake.errors, timeout=60)
    check(not fake.errors, f"the fake master failed: {fake.errors}")
    want_hello = f"state=RESUMING position={gen}:{pos}"
    for i, (name, *_) in enumerate(script[:invalid]):
        check(fake.closed_by_slave[i], f"B. {name}: the slave did not close the link")
        check(want_hello in fake.hellos[i + 1],
              f"B. after {name} the slave says '{fake.hellos[i + 1]}', expected {want_hello}")
        say(f"B. {name}: the slave answered {fake.answers[i]}, closed the link and reconnected with "
            f"'{fake.hellos[i + 1]}'")
    reasons = re.findall(r"link to master lost: ([^\n]*)", victim.text())
    check(len(reasons) >= invalid, f"the slave logged {len(reasons)} lost links, expected {invalid}")
    for r in reasons[:invalid]:
        say(f"B. slave log: link to master lost: {r}")
    connected = victim.count(r"connected to master at 127\.0\.0\.1:" + str(front.port))
    check(connected >= invalid + 1, f"the slave logged {connected} connections, expected {invalid + 1}")
    after = (harness.digest(slave.data), [harness.mdb_dump(slave.data, t) for t in TABLES])
    check(after[0] == kept[0], f"the slave's digest changed: {after[0]} (was {kept[0]})")
    check(after[1] == kept[1], "mdb_dump of the slave's tables changed")
    check(harness.info(slave.data)["seq"] == str(pos), "the slave's position changed")
    say(f"B. the slave's database is unchanged after {invalid} invalid change models: {after[0]}")

    fake.go_valid.set()
    harness.wait_until("the slave to apply the fake master's valid change",
                       lambda: harness.info(slave.data)["seq"] == nxt, timeout=60)
    check(harness.possync(slave.data, "get", "menu", "from-the-fake").strip() == "applied",
          "the valid change is not in the slave's table")
    say(f"B. control: a valid change model from the same fake master was applied (position {gen}:{nxt})")
    victim.stop()


def main(scn):
    key, _ = peers.key_of(FAKE_SEED)
    master = scn.master("master", STORE, TABLES, args=["--trusted-keys", key]).start()
    slave = scn.slave("slave", STORE, master).start()
    slave.wait_log(r"FULL sync complete")
    say(harness.writer("mixed", "--data", master.data, "--ops", "1000", "--seed", "2", "--tables", ",".join(TABLES)))
    harness.converge(master, [slave])
    part_a(scn, master, slave)
    part_b(scn, master, slave)
    master.stop()


if __name__ == "__main__":
    harness.run(main)
