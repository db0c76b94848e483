#!/usr/bin/env python3
"""Socket-level helpers of the scenario tests: the wire framing written and read in
Python, reading frames off a raw TCP link, and a relay (Proxy) that can hold one direction of a
link so a test controls "in the middle of a transfer", and a tunnel (SealTunnel) through which these
plaintext peers talk to daemons whose links are sealed. Only 127.0.0.1 is used; listeners take
their port from the kernel.

Framing (firmware/wire/frame.h): a 16-byte header, all little-endian u32: payload length,
XXH32(payload, seed 0), flags (0), XXH32(header bytes 0..11, seed 0); then the payload. XXH32 is
written out here (the tests use the standard library only); test_bad_peers.py checks it against
frames the firmware builds."""

import os
import socket
import struct
import subprocess
import threading

FRAME_HEADER_BYTES = 16

# seal_tunnel (tests/scenario/seal_tunnel.cc): from meson's environment, else in POSSYNC_BUILD.
SEAL_TUNNEL = os.environ.get("SEAL_TUNNEL") or os.path.join(os.environ.get("POSSYNC_BUILD", ""),
                                                            "tests/scenario/seal_tunnel")

_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M = 0xFFFFFFFF


def _rotl(x, r):
    return ((x << r) | (x >> (32 - r))) & _M


def xxh32(data, seed=0):
    """XXH32 of bytes (the xxHash specification), as an int."""
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M, (seed + _P2) & _M, seed & _M, (seed - _P1) & _M]
        while i + 16 <= n:
            for j, lane in enumerate(struct.unpack_from("<4I", data, i)):
                v[j] = (_rotl((v[j] + lane * _P2) & _M, 13) * _P1) & _M
            i += 16
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M
    else:
        h = (seed + _P5) & _M
    h = (h + n) & _M
    while i + 4 <= n:
        h = (_rotl((h + struct.unpack_from("<I", data, i)[0] * _P3) & _M, 17) * _P4) & _M
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * _P5) & _M, 11) * _P1) & _M
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M
    h ^= h >> 13
    h = (h * _P3) & _M
    h ^= h >> 16
    return h


def frame_header(length, checksum, flags=0):
    """A 16-byte frame header with a valid header check (any length, checksum and flags)."""
    head = struct.pack("<III", length, checksum, flags)
    return head + struct.pack("<I", xxh32(head))


def frame(payload):
    """A complete, valid frame around `payload` (bytes)."""
    return frame_header(len(payload), xxh32(payload)) + payload


def parse_header(header):
    """(length, payload checksum) of a received 16-byte header; ValueError when it is corrupt."""
    length, checksum, flags, check = struct.unpack("<IIII", header)
    if check != xxh32(header[:12]) or flags != 0:
        raise ValueError(f"bad frame header {header.hex()}")
    return length, checksum


def read_frame(sock):
    """One payload off the socket (checked against its checksum), or None when the peer closes
    first. ValueError when the frame is corrupt."""
    header = recv_exact(sock, FRAME_HEADER_BYTES)
    if header is None:
        return None
    length, checksum = parse_header(header)
    payload = recv_exact(sock, length)
    if payload is not None and xxh32(payload) != checksum:
        raise ValueError(f"frame checksum mismatch over {length} bytes")
    return payload


def recv_exact(sock, n):
    """n bytes from the socket, or None when the peer closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_frames_until_close(sock, timeout):
    """Payloads the peer sends until it closes the link; None if it is still open after `timeout`."""
    sock.settimeout(timeout)
    frames = []
    try:
        while True:
            payload = read_frame(sock)
            if payload is None:
                return frames
            frames.append(payload)
    except ConnectionResetError:
        return frames
    except socket.timeout:
        return None


class Proxy:
    """A TCP relay on 127.0.0.1 (port from the kernel) in front of a master, for slaves to connect
    through. hold_after(n) lets n more bytes of master->slave traffic through and then holds that
    direction (the slave sees a slow master) until release(); it makes "in the middle of a FULL
    sync" a state the test controls instead of a race. captured[True] / captured[False] hold every
    byte it relayed towards the slave / the master (a capture of the link, for the tests that
    check what an eavesdropper sees)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.limit = None          # bytes master->slave may pass before holding (None: no limit)
        self.passed = 0
        self.holding = threading.Event()
        self.released = threading.Event()
        self.connections = 0
        self.closed = False
        self.sockets = []
        self.captured = {True: bytearray(), False: bytearray()}  # to_slave -> every byte relayed
        threading.Thread(target=self._accept, daemon=True).start()

    def address(self):
        return f"127.0.0.1:{self.port}"

    def hold_after(self, nbytes):
        with self.lock:
            self.limit, self.passed = nbytes, 0
            self.holding.clear()
            self.released.clear()

    def release(self):
        with self.lock:
            self.limit = None
        self.released.set()

    def close(self):
        self.closed = True
        self.released.set()
        for s in [self.listener] + self.sockets:
            try:
                s.close()
            except OSError:
                pass

    def _accept(self):
        while not self.closed:
            try:
                down, _ = self.listener.accept()
            except OSError:
                return
            try:
                up = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                up.settimeout(None)
            except OSError:
                down.close()
                continue
            self.connections += 1
            self.sockets += [down, up]
            gone = threading.Event()
            threading.Thread(target=self._pump, args=(down, up, gone, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, gone, True), daemon=True).start()

    def _room(self, n):
        """How many of n master->slave bytes may pass now."""
        with self.lock:
            if self.limit is None:
                return n
            room = max(0, min(n, self.limit - self.passed))
            self.passed += room
            if room < n:
                self.holding.set()
            return room

    def _pump(self, src, dst, gone, to_slave):
        try:
            while not gone.is_set():
                data = src.recv(65536)
                if not data:
                    break
                with self.lock:
                    self.captured[to_slave] += data
                while data and to_slave:
                    room = self._room(len(data))
                    if room:
                        dst.sendall(data[:room])
                        data = data[room:]
                    if data:
                        while not gone.is_set() and not self.released.wait(0.05):
                            pass
                        if gone.is_set():
                            return
                if data:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            gone.set()
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class SealTunnel:
    """seal_tunnel between a plaintext Python peer and a daemon whose links are sealed, with the key
    pair of `seed_hex` (64 hex digits; its key: key_of). mode "connect": a peer connects to .port
    in plaintext and the tunnel opens a sealed link to the daemon listening on `port` (pairing:
    M1 asks to pair). mode "accept": a daemon connects to .port and the tunnel, once the handshake
    is done, relays to the plaintext server (a fake master) on `port`. Either way the tunnel
    accepts any key and each connection ends with one line "tunnel: REASON" in stderr_lines().
    The program reads its stdin, a pipe: it ends with this process or close()."""

    def __init__(self, mode, port, seed_hex, pairing=False):
        args = [SEAL_TUNNEL, mode, "--port", str(port), "--key-seed", seed_hex] + (["--pairing"] if pairing else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lock = threading.Lock()
        self.lines = []
        line = self.proc.stdout.readline().decode(errors="replace")
        if not line.startswith("port "):
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace").strip()
            self.proc.wait()
            raise RuntimeError(f"seal_tunnel {mode} did not start: {err or line.strip() or 'no output'}")
        self.port = int(line.split()[1])
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()

    def address(self):
        return f"127.0.0.1:{self.port}"

    def stderr_lines(self):
        """The lines the tunnel wrote to stderr so far (one "tunnel: REASON" per ended connection)."""
        with self.lock:
            return list(self.lines)

    def close(self):
        """Ends the tunnel (EOF on its stdin) and every connection through it."""
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)

    def _read_stderr(self):
        for raw in self.proc.stderr:
            with self.lock:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))


def key_of(seed_hex):
    """(public key as 64 hex digits, fingerprint) of the key pair seal_tunnel makes from `seed_hex`."""
    out = subprocess.run([SEAL_TUNNEL, "key", "--key-seed", seed_hex], capture_output=True, check=True,
                         timeout=30).stdout.decode()
    fields = dict(line.split(" ", 1) for line in out.splitlines())
    return fields["key"], fields["fingerprint"]
