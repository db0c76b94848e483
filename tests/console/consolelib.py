"""Shared harness of the console suite: real possyncd processes, a pty terminal, a socket client.

Everything here is bounded: every wait has a deadline and fails with a clear message; the
Harness kills every daemon it started and removes its temporary directory, and on failure
prints the tail of every daemon's log. Python 3 standard library only.
"""

import errno
import fcntl
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("POSSYNC_BUILD", "")
POSSYNCD = os.path.join(BUILD, "firmware", "daemon", "possyncd")
POSSYNC = os.path.join(BUILD, "tools", "possync", "possync")
PROMPT = b"possync> "
BANNER_RE = rb"\r\npossync console \S+ \(type help\)\r\n"
STORE = "console-store"
TABLES = "menu,orders"
# Fast link timings so link changes show within a second or two.
FAST_LINK = ["--heartbeat-ms", "200", "--timeout-ms", "1000",
             "--backoff-min-ms", "100", "--backoff-max-ms", "500"]
NOT_STREAMING = {"locating", "connecting", "await-welcome", "backoff", "waiting-operator"}


class Failure(Exception):
    """A check failed; the message says what was expected and what came."""


def check(cond, what):
    if not cond:
        raise Failure(what)


def wait_until(fn, timeout, what, interval=0.05):
    """Calls fn until it returns a true value (returned) or timeout seconds pass (Failure)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = fn()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise Failure("timed out after %.1f s waiting for %s (last: %r)" % (timeout, what, last))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# Daemons and the possync tool


class Daemon:
    """One possyncd process; stdout+stderr go to NAME.log in the harness directory."""

    def __init__(self, harness, name, args):
        self.harness = harness
        self.name = name
        self.args = args
        self.log_path = os.path.join(harness.dir, name + ".log")
        self.proc = None
        self.port = None
        self.start()

    def start(self):
        check(self.proc is None or self.proc.poll() is not None, self.name + " is already running")
        with open(self.log_path, "ab") as log:
            log.write(("---- start: possyncd %s\n" % " ".join(self.args)).encode())
            log.flush()
            self.proc = subprocess.Popen([POSSYNCD] + self.args, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        self._log_offset = os.path.getsize(self.log_path)

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def log_since_start(self):
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def wait_log(self, pattern, timeout=15):
        rx = re.compile(pattern)

        def found():
            self.assert_alive()
            return rx.search(self.log_since_start())
        return wait_until(found, timeout, "%s to log /%s/" % (self.name, pattern))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise Failure("%s exited with status %s" % (self.name, self.proc.returncode))

    def stop(self, timeout=10):
        """SIGTERM and wait for a clean exit (status 0)."""
        if not self.alive():
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise Failure("%s did not stop within %d s of SIGTERM" % (self.name, timeout))
        check(rc == 0, "%s exited with status %d after SIGTERM" % (self.name, rc))

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def run_tool(args, timeout=20, input_bytes=None):
    """Runs possync; returns (exit code, stdout text, stderr text)."""
    p = subprocess.run([POSSYNC] + args, input=input_bytes, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def put(data_dir, table, key, value):
    rc, out, err = run_tool(["--data", data_dir, "put", table, key, value])
    check(rc == 0, "possync put %s %s failed (%d): %s%s" % (table, key, rc, out, err))


DIGEST_RE = re.compile(r"^position=([0-9a-f]{16}):(\d+) digest=([0-9a-f]{16}) count=(\d+)$")


def digest(data_dir):
    """possync --data DIR digest as a dict: generation (hex text), seq, digest, count."""
    rc, out, err = run_tool(["--data", data_dir, "digest"])
    check(rc == 0, "possync digest %s failed (%d): %s" % (data_dir, rc, err.strip()))
    m = DIGEST_RE.match(out.strip())
    check(m is not None, "possync digest printed %r" % out)
    return {"generation": m.group(1), "seq": int(m.group(2)), "digest": m.group(3),
            "count": int(m.group(4))}


class Harness:
    """Temporary directory + every process of one test. Use as a context manager."""

    def __init__(self, name):
        check(os.path.isfile(POSSYNCD) and os.path.isfile(POSSYNC),
              "POSSYNC_BUILD=%r does not hold possyncd and possync" % BUILD)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="possync-%s-" % name)
        self.daemons = []
        self.closers = []

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is not None:
            self.dump_logs()
        for c in reversed(self.closers):
            try:
                c()
            except OSError:
                pass
        for d in self.daemons:
            d.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
        return False

    def path(self, name):
        return os.path.join(self.dir, name)

    def dump_logs(self, lines=60):
        for d in self.daemons:
            try:
                text = d.log().splitlines()
            except OSError:
                continue
            sys.stderr.write("==== %s (last %d lines of %s)\n" % (d.name, lines, d.log_path))
            sys.stderr.write("\n".join(text[-lines:]) + "\n")

    def master(self, name, data, port=0, tables=TABLES, extra=()):
        """Starts a master on 127.0.0.1 (port 0: any) and waits until it listens."""
        # --pair-window: the slaves pair on their first link (DESIGN.md §11).
        args = ["--role", "master", "--data", self.path(data), "--store", STORE,
                "--listen", "127.0.0.1:%d" % port, "--discovery", "static", "--pair-window", "3600"]
        if tables:
            args += ["--tables", tables]
        args += list(extra)
        d = Daemon(self, name, args)
        self.daemons.append(d)
        m = d.wait_log(r"info Daemon: listening on 127\.0\.0\.1:(\d+)")
        d.port = int(m.group(1))
        check(port == 0 or d.port == port, "%s listens on %d, not %d" % (name, d.port, port))
        d.data = self.path(data)
        return d

    def restart_master(self, d):
        """Starts a stopped master again with its arguments on the port it had (the data
        directory may have been swapped under it); returns once it listens."""
        d.args[d.args.index("--listen") + 1] = "127.0.0.1:%d" % d.port
        d.start()
        m = d.wait_log(r"info Daemon: listening on 127\.0\.0\.1:(\d+)")
        check(int(m.group(1)) == d.port, "%s came back on another port" % d.name)

    def slave(self, name, data, master_port, extra=()):
        args = ["--role", "slave", "--data", self.path(data), "--store", STORE,
                "--master", "127.0.0.1:%d" % master_port] + list(extra)
        d = Daemon(self, name, args)
        self.daemons.append(d)
        d.data = self.path(data)
        return d

    def socket_session(self, daemon, path, timeout=15):
        """Opens a session on a daemon's --console socket once the daemon serves it."""
        daemon.wait_log(r"info Daemon: console on socket " + re.escape(path), timeout)
        return SocketSession(self, path)

    def on_close(self, fn):
        self.closers.append(fn)


def main(test):
    """Runs test(); exit 0 on success, 1 with the reason on failure."""
    started = time.monotonic()
    try:
        test()
    except Failure as e:
        traceback.print_exc()
        print("FAIL: %s" % e, file=sys.stderr)
        sys.exit(1)
    except Exception:  # a harness bug or an unexpected OS error is a failure too
        traceback.print_exc()
        sys.exit(1)
    print("ok (%.1f s)" % (time.monotonic() - started))
    sys.exit(0)


# ---------------------------------------------------------------------------------------------
# Console answers


def parse_kv(lines):
    """`key: value` lines -> dict (the first ': ' splits)."""
    out = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        check(sep == ": ", "not a key: value line: %r in %r" % (line, lines))
        out[key] = value
    return out


def parse_table(lines):
    """An aligned table (header + rows) -> list of dicts; cells cut at the header's columns."""
    check(lines, "empty table answer")
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    rows = []
    for line in lines[1:]:
        cells = []
        for i, s in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(line)
            cells.append(line[s:end].strip())
        check(all(cells), "table row %r does not fit the header %r" % (line, header))
        rows.append(dict(zip(names, cells)))
    return rows


# ---------------------------------------------------------------------------------------------
# A technician's terminal on a pseudo-terminal pair


class Terminal:
    """The master side of a pty; the daemon gets `path` (the slave side) as --serial."""

    def __init__(self, harness):
        self.fd, self._slave_fd = os.openpty()
        self.path = os.ttyname(self._slave_fd)
        fl = fcntl.fcntl(self.fd, fcntl.F_GETFL)
        fcntl.fcntl(self.fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        self.buf = b""
        self.transcript = b""  # everything read, in order
        harness.on_close(self.close)

    def close(self):
        for fd in (self.fd, self._slave_fd):
            if fd is not None:
                os.close(fd)
        self.fd = self._slave_fd = None

    def _read_some(self, wait):
        r, _, _ = select.select([self.fd], [], [], wait)
        if not r:
            return 0
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.EIO):
                time.sleep(min(wait, 0.02))
                return 0
            raise
        self.buf += data
        self.transcript += data
        return len(data)

    def drain(self, quiet=0.2, timeout=10):
        """Reads until nothing came for `quiet` seconds; returns and clears the buffer."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._read_some(quiet) == 0:
                break
        out, self.buf = self.buf, b""
        return out

    def read_until(self, pattern, timeout=10, daemon=None):
        """Reads until the regex (bytes) matches the buffer; returns the buffer up to the end
        of the match and keeps the rest."""
        rx = re.compile(pattern) if isinstance(pattern, bytes) else pattern
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure("terminal: no %r within %.0f s; got %r" % (rx.pattern, timeout, self.buf[-400:]))
            if daemon is not None:
                daemon.assert_alive()
            self._read_some(min(left, 0.1))

    def write(self, data, timeout=10):
        """Writes all of data, waiting (bounded) while the pty does not take it; reads meanwhile
        so the daemon's answers never stall it."""
        deadline = time.monotonic() + timeout
        view = memoryview(data)
        while view:
            check(time.monotonic() < deadline, "terminal: the console stopped reading input")
            r, w, _ = select.select([self.fd], [self.fd], [], 0.1)
            if r:
                self._read_some(0)
            if w:
                try:
                    n = os.write(self.fd, view)
                except BlockingIOError:
                    continue
                view = view[n:]

    def wait_banner(self, daemon, timeout=15):
        return self.read_until(BANNER_RE + re.escape(PROMPT), timeout, daemon)

    def command(self, line, eol=b"\r", daemon=None, timeout=10):
        """Types a printable line and its end; returns (ok, answer lines). Checks the echo,
        that every answer line ends in CRLF and that the prompt follows."""
        data = line.encode() if isinstance(line, str) else line
        self.write(data + eol)
        out = self.read_until(re.escape(PROMPT), timeout, daemon)
        return self._answer(data, out)

    def _answer(self, typed, out):
        echo = typed + b"\r\n"
        check(out.startswith(echo), "terminal: expected the echo %r, got %r" % (echo, out[:200]))
        body = out[len(echo):-len(PROMPT)]
        check(re.search(rb"(?<!\r)\n", body) is None, "terminal: an answer line without CR: %r" % body)
        check(body == b"" or body.endswith(b"\r\n"), "terminal: answer does not end in CRLF: %r" % body)
        lines = body.decode(errors="replace").split("\r\n")[:-1] if body else []
        ok = not (len(lines) == 1 and lines[0].startswith("error: "))
        return ok, lines

    def run(self, line, daemon=None):
        """A command that must succeed; returns its answer lines."""
        ok, lines = self.command(line, daemon=daemon)
        check(ok, "terminal: %r answered %r" % (line, lines))
        return lines

    def error(self, line, daemon=None):
        """A command that must fail with one error line; returns the reason."""
        ok, lines = self.command(line, daemon=daemon)
        check(not ok, "terminal: %r should fail but answered %r" % (line, lines))
        return lines[0][len("error: "):]

    def status(self, daemon=None):
        return parse_kv(self.run("status", daemon))

    def stats(self, daemon=None):
        return {k: int(v) for k, v in parse_kv(self.run("stats", daemon)).items()}

    def expect_silence(self, seconds, what):
        """Checks that nothing arrives for `seconds`."""
        got = self.drain(quiet=seconds, timeout=seconds + 1)
        check(got == b"", "terminal: %s, but got %r" % (what, got[:200]))


# ---------------------------------------------------------------------------------------------
# The socket console's script protocol


class SocketSession:
    """One connection to `possyncd --console PATH`: a line out, the answer up to .ok/.error."""

    def __init__(self, harness, path, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        harness.on_close(self.close)

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, line):
        data = line.encode() if isinstance(line, str) else line
        self.sock.sendall(data + b"\n")

    def receive(self, timeout=10):
        """Reads one answer; returns (ok, lines) with dot-stuffing undone. Checks no CR."""
        deadline = time.monotonic() + timeout
        lines = []
        while True:
            nl = self.buf.find(b"\n")
            if nl >= 0:
                raw, self.buf = self.buf[:nl], self.buf[nl + 1:]
                check(b"\r" not in raw, "socket: CR in script mode: %r" % raw)
                text = raw.decode(errors="replace")
                if text in (".ok", ".error"):
                    return text == ".ok", lines
                lines.append(text[1:] if text.startswith(".") else text)
                continue
            left = deadline - time.monotonic()
            check(left > 0, "socket: no end marker within %.0f s; got %r" % (timeout, lines))
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise Failure("socket: no end marker within %.0f s; got %r" % (timeout, lines))
            check(data != b"", "socket: the daemon closed the session; got %r" % lines)
            self.buf += data

    def command(self, line):
        self.send(line)
        return self.receive()

    def run(self, line):
        ok, lines = self.command(line)
        check(ok, "socket: %r answered %r" % (line, lines))
        return lines

    def error(self, line):
        ok, lines = self.command(line)
        check(not ok and len(lines) == 1 and lines[0].startswith("error: "),
              "socket: %r should fail with one error line but answered %r" % (line, lines))
        return lines[0][len("error: "):]

    def status(self):
        return parse_kv(self.run("status"))

    def stats(self):
        return {k: int(v) for k, v in parse_kv(self.run("stats")).items()}
