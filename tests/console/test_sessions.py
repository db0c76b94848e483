"""Console session limits against a real daemon: idle socket sessions cannot lock a
technician out, and the serial console is never refused because of them.

Phase 1 (idle timeout long): eight idle socket sessions fill the socket console; a ninth is
refused with one line that says why and when idle ones go; the serial console still answers
while the eight are open, and so do the eight themselves.
Phase 2 (idle timeout short): eight idle socket sessions are closed by the daemon (each
client sees the end of the stream) and a new session gets in. No timing is asserted: the
test only waits, with a generous bound, for what must eventually happen.
"""

import socket

from consolelib import Harness, SocketSession, Terminal, check, main, wait_until


def eof(session):
    """True once the daemon closed this session (reads nothing but the end of the stream)."""
    session.sock.setblocking(False)
    try:
        data = session.sock.recv(4096)
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    finally:
        session.sock.setblocking(True)
    return data == b""


def test():
    with Harness("console-sessions") as h:
        # Phase 1: the limit and the reason; the serial console is apart.
        sock = h.path("master.sock")
        term = Terminal(h)
        master = h.master("master", "master",
                          extra=["--console", sock, "--serial", term.path, "--console-idle-ms", "600000"])
        term.wait_banner(master)
        first = h.socket_session(master, sock)
        idle = [first] + [SocketSession(h, sock) for _ in range(7)]
        # Every one of them is a live session (an answer proves the daemon took it).
        for s in idle:
            check(s.status()["role"] == "master", "a socket session did not answer")
        ninth = SocketSession(h, sock)
        ok, lines = ninth.receive()
        check(not ok and lines == ["error: console busy: 8 socket sessions open (idle ones close after 600 s)"],
              "the ninth session should be refused with the reason, got %r" % lines)
        wait_until(lambda: eof(ninth), 15, "the refused session to be closed")
        master.wait_log(r"warning Console: console socket: refused a session: console busy: 8 socket sessions")
        # The technician on the serial line is never refused because of socket sessions.
        check(term.status(master)["role"] == "master", "the serial console did not answer")
        check(idle[3].status()["role"] == "master", "an open socket session stopped answering")
        master.stop()

        # Phase 2: idle sessions time out, then a new session gets in.
        sock2 = h.path("master2.sock")
        master2 = h.master("master2", "master2", extra=["--console", sock2, "--console-idle-ms", "300"])
        first = h.socket_session(master2, sock2)
        idle = [first] + [SocketSession(h, sock2) for _ in range(7)]
        wait_until(lambda: all(eof(s) for s in idle), 30, "the daemon to close 8 idle sessions")
        master2.wait_log(r"info Console: console socket: closing a session idle for 300 ms")
        technician = SocketSession(h, sock2)
        check(technician.status()["role"] == "master", "a new session after the idle ones went did not answer")
        master2.assert_alive()


if __name__ == "__main__":
    main(test)
