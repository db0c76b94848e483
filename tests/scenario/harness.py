#!/usr/bin/env python3
"""Scenario test harness: real possyncd processes on 127.0.0.1, their data directories and logs.

A test is a function main(scn) run through run(main): scn is a Scenario that owns a temporary
directory and every process started through it. Whatever happens (failure, exception, SIGTERM
from meson's timeout) run() kills every process it started and removes the directory; the
children also get SIGKILL if this Python process dies (PR_SET_PDEATHSIG). On failure it prints
the reason and the last lines of every daemon log, and exits 1; on success it prints
"PASS <name>" and exits 0.

Every wait is bounded: wait_until() polls with a deadline and fails with a message.
Only 127.0.0.1 is used; masters listen on port 0 and the port is read from their log.
SCENARIO_KEEP=1 in the environment keeps the directory (data and logs) for a post-mortem.
"""

import atexit
import ctypes
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

from peers import Proxy, SealTunnel

BUILD = os.environ.get("POSSYNC_BUILD", "")


def _binary(env_name, rel):
    """The program named by the environment (meson sets it), else its place in POSSYNC_BUILD."""
    return os.environ.get(env_name) or (os.path.join(BUILD, rel) if BUILD else "")


POSSYNCD = _binary("POSSYNCD", "firmware/daemon/possyncd")
POSSYNC = _binary("POSSYNC", "tools/possync/possync")
WRITER = _binary("SCENARIO_WRITER", "tests/scenario/scenario_writer")
WIRE_TOOL = _binary("WIRE_TOOL", "tests/scenario/wire_tool")
MDB_DUMP = shutil.which("mdb_dump") or "mdb_dump"

# Options every daemon gets: short heartbeats so a dead peer is noticed quickly, short reconnect
# backoff so restarts are quick. The daemons run as shipped otherwise: --sync yes (every commit
# fsynced), the default. A test that needs --sync no passes it itself and says why.
# --pair-window: a scenario's slaves pair on their first link (DESIGN.md §11); the pairing
# scenarios pass --pair-window 0 and settle each board on the console.
MASTER_DEFAULTS = ["--discovery", "static", "--heartbeat-ms", "300", "--timeout-ms", "3000",
                   "--pair-window", "3600"]
SLAVE_DEFAULTS = ["--discovery", "static", "--heartbeat-ms", "300", "--timeout-ms", "3000",
                  "--backoff-min-ms", "100", "--backoff-max-ms", "500"]

_PR_SET_PDEATHSIG = 1


def _with_defaults(defaults, args):
    """defaults + args, leaving out each default option that args sets again."""
    given = {a for a in args if a.startswith("--")}
    out, i = [], 0
    while i < len(defaults):
        if defaults[i] in given:
            i += 2
            continue
        out += defaults[i:i + 2]
        i += 2
    return out + list(args)


def _die_with_parent():
    """preexec_fn: the child gets SIGKILL when the thread that started it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except Exception:  # noqa: BLE001 - best effort; atexit still kills the child
        pass


class ScenarioFailure(Exception):
    """A check failed; the message says which and why."""


def fail(message):
    raise ScenarioFailure(message)


def check(condition, message):
    if not condition:
        fail(message)


def say(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_until(what, predicate, timeout=30.0, interval=0.1):
    """Polls predicate() until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def run_tool(args, timeout=60, check_rc=True, binary=False):
    """Runs a helper program to completion; returns (rc, stdout, stderr)."""
    try:
        p = subprocess.run(args, capture_output=True, timeout=timeout, preexec_fn=_die_with_parent)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(args)} did not finish within {timeout} s")
    out = p.stdout if binary else p.stdout.decode(errors="replace")
    err = p.stderr.decode(errors="replace")
    if check_rc and p.returncode != 0:
        fail(f"{' '.join(args)} exited {p.returncode}: {err.strip()}")
    return p.returncode, out, err


def possync(data, *args, **kw):
    """`possync --data DATA ARGS...`; returns stdout (fails on a non-zero exit)."""
    return run_tool([POSSYNC, "--data", data, *args], **kw)[1]


def digest(data):
    """The `possync digest` line: 'position=GEN:SEQ digest=HEX count=N'."""
    return possync(data, "digest").strip()


def info(data):
    """`possync info` as a dict (role, generation, seq, synced, watched, log_first, ...)."""
    result = {}
    for line in possync(data, "info").splitlines():
        key, _, value = line.partition(":")
        result[key.strip()] = value.strip()
    return result


def watched(data):
    return [t for t in info(data).get("watched", "").split(",") if t]


def writer(*args, timeout=120):
    """scenario_writer ARGS...; returns its stdout line."""
    return run_tool([WRITER, *args], timeout=timeout)[1].strip()


def observe(data, tables):
    """One read transaction's view of `tables` (see scenario_writer observe)."""
    return writer("observe", "--data", data, "--tables", ",".join(tables))


def mdb_dump(data, table):
    """The records of one table as mdb_dump prints them (header stripped), or None if absent."""
    rc, out, err = run_tool([MDB_DUMP, "-s", table, data], check_rc=False, binary=True)
    if rc != 0:
        if "MDB_NOTFOUND" in err:
            return None
        fail(f"mdb_dump -s {table} {data} exited {rc}: {err.strip()}")
    header, sep, body = out.partition(b"HEADER=END\n")
    check(sep, f"mdb_dump -s {table} {data}: no HEADER=END line")
    return body


def wire(*args):
    """A complete frame (16-byte header + payload, see peers.py) from wire_tool, as bytes."""
    return bytes.fromhex(run_tool([WIRE_TOOL, *args])[1].strip())


def decode(payload):
    """wire_tool's one-line description of a payload (e.g. "Error code=VERIFY text=...")."""
    rc, out, err = run_tool([WIRE_TOOL, "decode", payload.hex()], check_rc=False)
    return out.strip() if rc == 0 else f"undecodable ({err.strip()})"


def console(path, line, timeout=10.0):
    """One command on a daemon's --console socket (script mode); returns (ok, lines).
    Fails if the answer's end marker (.ok/.error) does not come within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(line.encode() + b"\n")
        buf, lines = b"", []
        while True:
            nl = buf.find(b"\n")
            if nl >= 0:
                raw, buf = buf[:nl], buf[nl + 1:]
                text = raw.decode(errors="replace")
                if text in (".ok", ".error"):
                    return text == ".ok", lines
                lines.append(text[1:] if text.startswith(".") else text)
                continue
            left = deadline - time.monotonic()
            check(left > 0, f"console {path}: no answer to {line!r} within {timeout:.0f} s (got {lines!r})")
            sock.settimeout(left)
            try:
                data = sock.recv(65536)
            except socket.timeout:
                fail(f"console {path}: no answer to {line!r} within {timeout:.0f} s (got {lines!r})")
            check(data, f"console {path}: closed before answering {line!r}")
            buf += data


def readable(pipe):
    """Whether a line (or EOF) from a spawned helper's stdout can be read without waiting."""
    return bool(select.select([pipe], [], [], 0)[0])


def dump_records(body):
    """Number of records in an mdb_dump body (two lines each)."""
    return 0 if body is None else body.count(b"\n") // 2


class Daemon:
    """One possyncd process; its stderr goes to NAME.log in the scenario directory.

    start() may be called again after stop()/kill(): the log is appended to, with a marker line.
    """

    def __init__(self, scn, name, role, data, store, args):
        self.scn, self.name, self.role, self.data, self.store = scn, name, role, data, store
        self.args = list(args)
        self.log_path = os.path.join(scn.root, name + ".log")
        self.proc = None
        self.port = None
        self.starts = 0
        self.start_offset = 0

    def command(self):
        return [POSSYNCD, "--role", self.role, "--data", self.data, "--store", self.store, *self.args]

    def start(self, extra=()):
        check(self.proc is None or self.proc.poll() is not None, f"{self.name} is already running")
        self.starts += 1
        with open(self.log_path, "ab") as f:
            f.write(f"=== harness: start {self.starts}: {' '.join(self.command() + list(extra))}\n".encode())
        self.start_offset = os.path.getsize(self.log_path)
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command() + list(extra), stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, preexec_fn=_die_with_parent)
        finally:
            log.close()
        self.scn.processes.append(self.proc)
        if self.role == "master":
            m = self.wait_log(r"Daemon: listening on 127\.0\.0\.1:(\d+)", timeout=20)
            self.port = int(m.group(1))
        return self

    def address(self):
        check(self.port, f"{self.name} has no port yet")
        return f"127.0.0.1:{self.port}"

    def restart_on_same_port(self, timeout=10):
        """Starts a stopped master again on the port the kernel gave it first (its slaves have that
        address). Retries while the port is briefly unavailable."""
        check(self.role == "master" and self.port, f"{self.name} is not a master that ran before")
        self.args = [f"127.0.0.1:{self.port}" if a.startswith("127.0.0.1:") else a for a in self.args]
        deadline = time.monotonic() + timeout
        while True:
            port = self.port
            try:
                self.start()
                check(self.port == port, f"{self.name} came back on port {self.port}, not {port}")
                return self
            except ScenarioFailure:
                if time.monotonic() >= deadline or "in use" not in self.text(self.start_offset):
                    raise
                time.sleep(0.2)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM; the daemon must exit 0 within `timeout` seconds."""
        if not self.alive():
            fail(f"{self.name} died before it was stopped (exit {self.proc.returncode if self.proc else '-'})")
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            fail(f"{self.name} did not stop within {timeout} s of SIGTERM")
        check(rc == 0, f"{self.name} exited {rc} after SIGTERM")

    def kill(self):
        """SIGKILL (a power cut of the process)."""
        check(self.alive(), f"{self.name} died before it was killed")
        self.proc.kill()
        self.proc.wait(10)

    def text(self, since=0):
        with open(self.log_path, "rb") as f:
            f.seek(since)
            return f.read().decode(errors="replace")

    def mark(self):
        """A position in the log: pass it as `since` to look only at what comes after."""
        return os.path.getsize(self.log_path)

    def count(self, pattern, since=0):
        return len(re.findall(pattern, self.text(since)))

    def wait_log(self, pattern, count=1, since=None, timeout=30):
        """Waits for the count-th match of the regex in the log after `since` (default: this start)."""
        since = self.start_offset if since is None else since

        def found():
            if self.proc is not None and self.proc.poll() is not None:
                fail(f"{self.name} exited {self.proc.returncode} while waiting for /{pattern}/")
            matches = list(re.finditer(pattern, self.text(since)))
            return matches[count - 1] if len(matches) >= count else None

        return wait_until(f"{self.name} to log /{pattern}/" + (f" {count} times" if count > 1 else ""), found,
                          timeout=timeout)

    def expect_alive(self):
        check(self.alive(), f"{self.name} died (exit {self.proc.returncode if self.proc else '-'})")


class Scenario:
    def __init__(self, name):
        self.name = name
        self.root = tempfile.mkdtemp(prefix=f"possync-{name}-", dir="/tmp")
        self.processes = []
        self.daemons = []
        self.cleaned = False
        self.servers = []  # in-test listeners (Proxy, fake masters): close() at cleanup
        self.tunnels = {}  # daemon port -> the SealTunnel sealed() made for it

    def path(self, name):
        return os.path.join(self.root, name)

    def master(self, name, store, tables, args=(), data=None):
        data = data or self.path(name)
        d = Daemon(self, name, "master", data, store,
                   ["--listen", "127.0.0.1:0", "--tables", ",".join(tables)] + _with_defaults(MASTER_DEFAULTS, args))
        self.daemons.append(d)
        return d

    def slave(self, name, store, master, args=(), data=None):
        """A slave of `master` (a Daemon, or a Proxy in front of one)."""
        data = data or self.path(name)
        d = Daemon(self, name, "slave", data, store, ["--master", master.address()] + _with_defaults(SLAVE_DEFAULTS, args))
        self.daemons.append(d)
        return d

    def proxy(self, master):
        """A Proxy in front of `master` (pass it to slave() instead of the master)."""
        p = Proxy(master.port)
        self.servers.append(p)
        return p

    def sealed(self, daemon, seed=None, pairing=True):
        """A plaintext port for a Python peer speaking the sync protocol to `daemon` (a master):
        seal_tunnel does the trust handshake with its own key (random unless `seed`, 64 hex
        digits) and seals what passes (DESIGN.md §11). With `pairing` it asks to pair, so a master
        with its pairing window open (the harness default) admits it. Returns the SealTunnel."""
        if seed is None:  # one tunnel (one board key) per daemon port serves every such peer
            known = self.tunnels.get(daemon.port)
            if known and known.proc.poll() is None:
                return known
        t = SealTunnel("connect", daemon.port, seed or os.urandom(32).hex(), pairing=pairing)
        self.servers.append(t)
        if seed is None:
            self.tunnels[daemon.port] = t
        return t

    def sealed_master(self, plain_port, seed=None):
        """A sealed front for a fake master in Python listening in plaintext on `plain_port`: pass
        the returned SealTunnel to slave() (a fresh slave pairs with whatever master it meets)."""
        t = SealTunnel("accept", plain_port, seed or os.urandom(32).hex())
        self.servers.append(t)
        return t

    def spawn(self, args, stdin=subprocess.DEVNULL):
        """A background helper process (killed at the end like the daemons)."""
        p = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=_die_with_parent)
        self.processes.append(p)
        return p

    def cleanup(self):
        if self.cleaned:
            return
        self.cleaned = True
        for p in self.servers:
            p.close()
        for p in self.processes:
            if p.poll() is None:
                p.kill()
        for p in self.processes:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        if os.environ.get("SCENARIO_KEEP"):
            print(f"kept {self.root} (SCENARIO_KEEP is set)", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def dump_logs(self, lines=40):
        for d in self.daemons:
            if not os.path.exists(d.log_path):
                continue
            tail = d.text().splitlines()[-lines:]
            print(f"--- last {len(tail)} lines of {d.name}.log ({d.data}):", file=sys.stderr)
            for line in tail:
                print("    " + line, file=sys.stderr)


# A sanitizer build (meson b_sanitize): ASan's quarantine keeps up to 256 MiB of freed memory
# resident and its shadow memory grows with use, so RssAnon there says little about the daemon.
SANITIZED = os.environ.get("POSSYNC_SANITIZED") == "1"


def rss_bound_kib(kib):
    """A test's bound on anonymous memory growth, scaled under a sanitizer (still far below the
    GiBs an unbounded queue reaches)."""
    return kib * 8 if SANITIZED else kib


def rss_anon_kib(pid):
    """A process's anonymous resident memory (RssAnon in /proc/PID/status), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    fail(f"no RssAnon in /proc/{pid}/status")
    return 0


def converge(master, slaves, timeout=30):
    """Waits until every slave's digest equals the master's (position, digest and count), then
    checks every watched table byte for byte with mdb_dump. Nothing may write meanwhile."""
    def equal():
        try:
            want = digest(master.data)
            got = [digest(s.data) for s in slaves]
        except ScenarioFailure:
            return None  # a board just started may not have made its directory yet: ask again
        return want if all(g == want for g in got) else None

    try:
        want = wait_until("the slaves' digests to equal the master's", equal, timeout=timeout, interval=0.2)
    except ScenarioFailure:
        def shown(board):
            try:
                return digest(board.data)
            except ScenarioFailure as e:
                return f"(no digest: {e})"
        lines = [f"  {master.name}: {shown(master)}"] + [f"  {s.name}: {shown(s)}" for s in slaves]
        fail(f"no convergence within {timeout} s:\n" + "\n".join(lines))
    tables = watched(master.data)
    check(tables, f"{master.name} has no watched tables")
    for s in slaves:
        check(watched(s.data) == tables, f"{s.name} watches {watched(s.data)}, the master {tables}")
    records = 0
    for t in tables:
        ref = mdb_dump(master.data, t)
        for s in slaves:
            got = mdb_dump(s.data, t)
            if got != ref:
                fail(f"table {t}: mdb_dump of {s.name} differs from {master.name} although digests are equal "
                     f"({dump_records(got)} vs {dump_records(ref)} records)")
        records += dump_records(ref)
    say(f"converged: {', '.join(s.name for s in slaves)} = {master.name}: {want}; "
        f"mdb_dump of {len(tables)} tables ({records} records) identical")
    return want


def run(main):
    """Runs main(scn) with cleanup, logs on failure, a PASS line and the exit code."""
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    for exe in (POSSYNCD, POSSYNC, WRITER, WIRE_TOOL):
        if not exe or not os.access(exe, os.X_OK):
            print(f"FAIL {name}: {exe or 'a binary'} is not built (set POSSYNC_BUILD)", file=sys.stderr)
            sys.exit(1)
    scn = Scenario(name)
    atexit.register(scn.cleanup)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    t0 = time.monotonic()
    code = 1
    try:
        main(scn)
        for d in scn.daemons:
            if d.proc is not None and d.proc.poll() is not None and d.proc.returncode not in (0, -9):
                fail(f"{d.name} exited {d.proc.returncode}")
        code = 0
    except ScenarioFailure as e:
        print(f"FAILED: {e}", file=sys.stderr)
        scn.dump_logs()
    except (SystemExit, KeyboardInterrupt) as e:  # SIGTERM (meson's timeout) or Ctrl-C
        print(f"FAILED: interrupted ({e!r}) after {time.monotonic() - t0:.1f} s", file=sys.stderr)
        scn.dump_logs()
    except Exception:  # noqa: BLE001 - a harness bug is a failure too, with its traceback
        traceback.print_exc()
        scn.dump_logs()
    finally:
        scn.cleanup()
    if code == 0:
        print(f"PASS {name} ({time.monotonic() - t0:.1f} s)", flush=True)
    else:
        print(f"FAIL {name} ({time.monotonic() - t0:.1f} s)", flush=True)
    sys.exit(code)


class Poller:
    """Runs fn() every `interval` seconds in a thread until stop(); keeps every result.
    Used for readers that watch a board while something happens to it."""

    def __init__(self, fn, interval=0.05):
        self.fn, self.interval = fn, interval
        self.results, self.errors = [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.results.append((time.monotonic(), self.fn()))
            except ScenarioFailure as e:
                self.errors.append(str(e))
            self._stop.wait(self.interval)

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join(60)
        return self.results

