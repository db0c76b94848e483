"""The console on its Unix socket (`possyncd --console PATH`), script protocol and CLI.

Two sessions open at once on a slave run every command, interleaved, and get the same
answers; answers are framed by `.ok`/`.error`, lines starting with '.' are dot-stuffed,
there is no echo, prompt or CR; several commands in one write are answered in order; bad
lines get one error line; Ctrl-D ends only its own session; a half line before the end of
input is never run; a ninth session is refused. Then the `possync console --socket` tool:
exit 0 for an answer, 1 for an error answer (missing key, unknown command), 2 without a
console, and the same from an interactive session on stdin; on a terminal the tool edits lines
as the serial console does (Tab, history, Ctrl-U, Ctrl-D).
"""

import json
import os
import pty
import select
import socket
import time

from consolelib import (POSSYNC, Harness, SocketSession, check, main, parse_kv, parse_table, put,
                        run_tool, wait_until)

# Commands whose answer is the same on two sessions asked at the same time.
STABLE = ["help", "help scan", "version", "tables", "get menu coffee", "scan menu", "scan menu c 1",
          "loglevel", "loglevel Console", "discovery", "accept-generation", "get menu nosuchkey",
          "frobnicate", "scan nosuchtable"]
# Commands whose numbers move (uptime, heartbeat, counters, log): compare the keys.
MOVING = ["status", "stats", "peers", "log 5"]


def raw_answer(path, line, timeout=10):
    """The bytes of one answer, unparsed."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(line + b"\n")
        data = b""
        while not (data.endswith(b"\n.ok\n") or data.endswith(b"\n.error\n") or
                   data in (b".ok\n", b".error\n")):
            chunk = s.recv(65536)
            check(chunk != b"", "socket closed mid-answer: %r" % data)
            data += chunk
        return data
    finally:
        s.close()


def shape(cmd, lines):
    if cmd == "log 5":
        return len(lines)
    if cmd == "peers":
        return [sorted(r) for r in parse_table(lines)] + [len(lines)]
    return sorted(parse_kv(lines))


def check_tool_terminal(sock):
    """`possync console --socket` on a terminal edits lines like the serial console: Tab completes
    a command, Up brings the last line back, Ctrl-U drops a half line, Ctrl-D ends the session."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(POSSYNC, [POSSYNC, "console", "--socket", sock])
    out = b""

    def read_until(needle, timeout=10):
        nonlocal out
        deadline = time.monotonic() + timeout
        while needle not in out and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    out += os.read(fd, 65536)
                except OSError:
                    break
        check(needle in out, "possync console on a terminal: no %r in %r" % (needle, out[-400:]))

    try:
        read_until(b"possync> ")
        os.write(fd, b"vers\t\r")  # Tab completes "version"
        read_until(b"protocol: ")
        out = b""
        os.write(fd, b"tables\r")
        read_until(b"orders")
        out = b""
        os.write(fd, b"\x1b[A\r")  # Up: "tables" again
        read_until(b"orders")
        out = b""
        os.write(fd, b"garbage\x15get menu cake\r")  # Ctrl-U drops "garbage"
        read_until(b"value: cheese")
        check(b"unknown command" not in out, "Ctrl-U did not drop the half line: %r" % out)
        os.write(fd, b"\x04")  # Ctrl-D on an empty line
        _, status = os.waitpid(pid, 0)
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, "possync console exited %r" % status)
    finally:
        try:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)


def test():
    with Harness("console-socket") as h:
        msock, ssock = h.path("master.sock"), h.path("slave.sock")
        master = h.master("master", "master", extra=["--console", msock])
        put(master.data, "menu", "coffee", "espresso")
        put(master.data, "menu", "cake", "cheese")
        put(master.data, "menu", ".hidden", "a key that starts with a dot")
        put(master.data, "orders", "0001", "coffee x1")
        slave = h.slave("slave", "slave", master.port, ["--console", ssock])
        one = h.socket_session(slave, ssock)
        two = SocketSession(h, ssock)
        wait_until(lambda: one.status()["link"] == "streaming", 15, "the slave to stream")
        wait_until(lambda: one.command("get orders 0001")[0], 15, "the slave to have the data")

        # Every command on both sessions, interleaved.
        for cmd in STABLE + MOVING:
            one.send(cmd)
            two.send(cmd)
            a2 = two.receive()
            a1 = one.receive()
            check(a1[0] == a2[0], "%r: ok %r on one session, %r on the other" % (cmd, a1, a2))
            if cmd in STABLE:
                check(a1 == a2, "%r: different answers %r / %r" % (cmd, a1, a2))
            else:
                check(shape(cmd, a1[1]) == shape(cmd, a2[1]), "%r: %r / %r" % (cmd, a1, a2))
        check(one.run("resync") == ["resync: full sync requested"], "resync")
        wait_until(lambda: two.status()["link"] == "streaming" and two.stats()["full_syncs"] == 2,
                   15, "the resync to finish")
        check(parse_kv(one.run("get menu coffee"))["value"] == "espresso", "get after resync")
        check(one.error("get menu nosuchkey") == "no key nosuchkey in table menu", "missing key")
        check(one.error("frobnicate") == "unknown command 'frobnicate' (try help)", "unknown")

        # Framing: no echo, no prompt, LF only; dot-stuffing; empty answers; pipelining.
        raw = raw_answer(ssock, b"scan menu .")
        check(raw == b"table: menu\nrows: 1\nmore: no\nkey      value\n"
              b"..hidden  a key that starts with a dot\n.ok\n", "dot-stuffed scan: %r" % raw)
        rows = parse_table(one.run("scan menu .")[3:])
        check(rows[-1]["key"] == ".hidden", "dot-stuffing undone: %r" % rows)
        check(raw_answer(ssock, b"") == b".ok\n", "a blank line answers just .ok")
        check(raw_answer(ssock, b"get menu \x00\xff") ==
              b"error: line contains bytes that are not text, ignored (type binary keys as "
              b"0x-hex)\n.error\n", "binary line")
        check(raw_answer(ssock, b"x" * 2000) ==
              b"error: line too long (more than 512 bytes), ignored\n.error\n", "long line")
        one.sock.sendall(b"version\nfrobnicate\r\nget menu cake\n")
        check(one.receive()[0], "pipelined version")
        check(not one.receive()[0], "pipelined unknown command (CRLF)")
        check(parse_kv(one.receive()[1])["value"] == "cheese", "pipelined get")

        # Ctrl-D on an empty line ends that session only; a half line at the end never runs.
        three = SocketSession(h, ssock)
        three.sock.sendall(b"\x04")
        three.sock.settimeout(5)
        check(three.sock.recv(100) == b"", "Ctrl-D did not end the session")
        four = SocketSession(h, ssock)
        four.sock.sendall(b"resync")
        four.sock.shutdown(socket.SHUT_WR)
        four.sock.settimeout(5)
        check(four.sock.recv(100) == b"", "a half line at the end of input was answered")
        check(two.stats()["full_syncs"] == 2 and two.status()["link"] == "streaming",
              "the half line 'resync' ran")

        # At most 8 sessions: 2 open, 6 more, the ninth is refused, then room again.
        extra = [SocketSession(h, ssock) for _ in range(6)]
        for s in extra:
            s.run("version")
        ninth = SocketSession(h, ssock)
        ok, lines = ninth.receive()
        busy = "error: console busy: 8 socket sessions open (idle ones close after 300 s)"
        check(not ok and lines == [busy], "ninth session %r" % lines)
        extra.pop().close()
        def another_session():
            try:
                return SocketSession(h, ssock).command("version")[0]
            except OSError:  # refused and closed before our line went out
                return False
        wait_until(another_session, 10, "a session once one closed")
        for s in extra:
            s.close()

        # The possync tool.
        rc, out, err = run_tool(["console", "--socket", ssock, "status"])
        check(rc == 0 and parse_kv(out.splitlines())["role"] == "slave", "tool status: %d %r %r" % (rc, out, err))
        rc, out, err = run_tool(["console", "--socket", ssock, "get", "menu", "nosuchkey"])
        check(rc == 1 and "error: no key nosuchkey in table menu" in out + err,
              "tool get of a missing key: %d %r %r" % (rc, out, err))
        rc, out, err = run_tool(["console", "--socket", ssock, "frobnicate"])
        check(rc == 1 and "unknown command 'frobnicate'" in out + err, "tool unknown: %d %r %r" % (rc, out, err))
        rc, out, err = run_tool(["console", "--socket", ssock, "scan", "menu", "."])
        check(rc == 0 and "\n.hidden " in out and "..hidden" not in out, "tool scan: %d %r" % (rc, out))
        rc, out, err = run_tool(["console", "--socket", msock, "peers"])
        check(rc == 0 and len(parse_table(out.splitlines())) == 1, "tool peers on the master: %r" % out)
        # --json for scripts and monitoring: the same facts, parsed by a JSON reader.
        rc, out, err = run_tool(["console", "--socket", ssock, "status", "--json"])
        st = json.loads(out)
        check(rc == 0 and st["role"] == "slave" and isinstance(st["position"], int), "status --json: %r" % out)
        rc, out, err = run_tool(["console", "--socket", msock, "peers", "--json"])
        peers = json.loads(out)
        check(rc == 0 and len(peers) == 1 and peers[0]["state"] == "streaming", "peers --json: %r" % out)
        for cmd in ("tables", "stats"):
            rc, out, err = run_tool(["console", "--socket", msock, cmd, "--json"])
            check(rc == 0 and json.loads(out), "%s --json: %d %r" % (cmd, rc, out))
        rc, out, err = run_tool(["console", "--socket", h.path("none.sock"), "status"])
        check(rc == 2 and err.strip() and "\n" not in err.strip(), "tool without a console: %d %r" % (rc, err))
        rc, out, err = run_tool(["console", "--socket", ssock], input_bytes=b"version\nget menu cake\n")
        check(rc == 0 and "version: " in out and "value: cheese" in out, "tool on stdin: %d %r %r" % (rc, out, err))
        check_tool_terminal(ssock)
        slave.assert_alive()
        master.assert_alive()
        check(two.status()["link"] == "streaming", "the first sessions still work")
        one.close()
        two.close()
        slave.stop()
        master.stop()


if __name__ == "__main__":
    main(test)
