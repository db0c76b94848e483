#!/usr/bin/env python3
"""Socket-level helpers of the scenario tests: reading frames off a raw TCP link, and a relay
(Proxy) that can hold one direction of a link so a test controls "in the middle of a transfer".
Only 127.0.0.1 is used; listeners take their port from the kernel."""

import socket
import threading


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
            header = recv_exact(sock, 4)
            if header is None:
                return frames
            payload = recv_exact(sock, int.from_bytes(header, "little"))
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
    sync" a state the test controls instead of a race."""

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
