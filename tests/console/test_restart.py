"""A technician's console session stays open on a slave while its master restarts.

The slave serves its console on a pty (--serial) and a Unix socket (--console); both sessions
are opened before the master is stopped and used throughout. While the master is down the
slave's `status` shows the link not streaming (backoff/locating/connecting), `peers` agrees;
a write made on the master's data directory while its daemon is down and one made after the
restart both arrive; `stats` counts the reconnect, and the resume is INCREMENTAL (no FULL).
The master comes back on the SAME data directory and the port it got the first time.
"""

import time

from consolelib import (FAST_LINK, NOT_STREAMING, Harness, Terminal, check, digest, main,
                        parse_kv, parse_table, put, wait_until)


def test():
    with Harness("console-restart") as h:
        master = h.master("master", "master", extra=["--heartbeat-ms", "200", "--timeout-ms", "1000"])
        put(master.data, "menu", "coffee", "espresso")
        put(master.data, "orders", "0001", "coffee x1")

        term = Terminal(h)
        sock = h.path("slave.sock")
        slave = h.slave("slave", "slave", master.port, ["--serial", term.path, "--console", sock] + FAST_LINK)
        term.wait_banner(slave)
        session = h.socket_session(slave, sock)
        wait_until(lambda: term.status(slave)["link"] == "streaming", 15, "the slave to stream")
        wait_until(lambda: digest(slave.data) == digest(master.data), 15, "the slave to converge")
        before = term.status(slave)
        stats_before = term.stats(slave)
        check(stats_before["reconnects"] == 0, "reconnects before the restart: %r" % stats_before)

        master.stop()
        seen = set()

        def link_down():
            link = term.status(slave)["link"]
            seen.add(link)
            return link in NOT_STREAMING
        wait_until(link_down, 10, "status to show the link down")
        # Watch it for a while: it retries (backoff and connect attempts) and never claims
        # to stream while the master is gone.
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            link_down()
            time.sleep(0.05)
        check(seen - {"streaming"} <= NOT_STREAMING and "backoff" in seen,
              "link states while the master is down: %r" % seen)
        peers = parse_table(term.run("peers", slave))
        check(len(peers) == 1 and peers[0]["state"] in NOT_STREAMING and
              peers[0]["heartbeat_ms"] == "-", "peers while the master is down: %r" % peers)
        st = session.status()
        check(st["link"] in NOT_STREAMING and st["position"] == before["position"],
              "socket status while the master is down: %r" % st)

        # Written on the master's board while its daemon is down: must arrive after the restart.
        put(master.data, "menu", "while-down", "written while the daemon was stopped")
        h.restart_master(master)
        wait_until(lambda: term.status(slave)["link"] == "streaming", 15,
                   "status to show the link streaming again")
        put(master.data, "menu", "after-restart", "written after the restart")

        def arrived():
            ok, lines = term.command("get menu after-restart", daemon=slave)
            return ok and parse_kv(lines)["value"] == "written after the restart"
        wait_until(arrived, 15, "the write made after the restart to show on the slave console")
        check(parse_kv(term.run("get menu while-down", slave))["value"] ==
              "written while the daemon was stopped", "the write made while the master was down")
        wait_until(lambda: digest(slave.data) == digest(master.data), 15, "the slave to converge")

        after = term.status(slave)
        mine = digest(slave.data)
        check(after["generation"] == before["generation"] == mine["generation"] and
              int(after["position"]) == mine["seq"] and after["lag_changes"] == "0" and
              after["waiting"] == "-", "status after the restart: %r (digest %r)" % (after, mine))
        stats_after = term.stats(slave)
        check(stats_after["reconnects"] > stats_before["reconnects"],
              "reconnects did not go up: %r -> %r" % (stats_before, stats_after))
        check(stats_after["full_syncs"] == stats_before["full_syncs"] and
              stats_after["incremental_syncs"] > stats_before["incremental_syncs"],
              "the resume was not INCREMENTAL: %r -> %r" % (stats_before, stats_after))
        peers = parse_table(session.run("peers"))
        check(len(peers) == 1 and peers[0]["state"] == "streaming" and
              peers[0]["address"] == "127.0.0.1:%d" % master.port, "peers after the restart: %r" % peers)

        # The terminal session was never reset: one banner in everything it received.
        check(term.transcript.count(b"(type help)") == 1, "the serial console restarted its session")
        check(session.status()["link"] == "streaming", "the socket session after the restart")
        slave.stop()
        master.stop()


if __name__ == "__main__":
    main(test)
