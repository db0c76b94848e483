"""What the console reports is itself tested: its numbers against what the test observes.

One master and two slaves, every board with a --console socket. Checked:
  - slave `status`: position and generation == `possync --data SLAVE digest`; once writes
    settle lag_changes 0 and master_head == the master's seq; master `status` likewise;
  - master `peers`: one row per connected slave (2, then 1 after one stops), each row's
    position == that slave's digest seq; `status` link counts the slaves;
  - `tables`: entries and digest of every watched table equal on master and slaves, and
    they add up to the digest line;
  - a reconnect (the master frozen past the link timeout) raises `stats` reconnects;
  - `resync` raises full_syncs on both sides, returns to streaming, same digest;
  - `accept-generation` on a slave that is not waiting is an error line;
  - master data replaced (fresh data dir, same store and port): the slave's `status` shows a
    `waiting:` reason naming accept-generation and keeps its data (`tables`, digest); after
    `accept-generation` it converges to the new master.
"""

import functools
import os
import shutil
import signal

from consolelib import (FAST_LINK, NOT_STREAMING, Harness, check, digest, main, parse_kv,
                        parse_table, put, run_tool, wait_until)


def watched_tables(session):
    return {r["name"]: r for r in parse_table(session.run("tables")) if r["watched"] == "yes"}


def slave_status_matches(session, slave, master):
    """The slave's status against its digest and the master's; returns the status or None."""
    st = session.status()
    mine, theirs = digest(slave.data), digest(master.data)
    if (st["link"] == "streaming" and st["generation"] == mine["generation"] and
            int(st["position"]) == mine["seq"] and st["lag_changes"] == "0" and
            st["master_head"] == str(theirs["seq"]) and mine == theirs):
        return st
    return None


def peers_match(session, slaves):
    """The master's peers: exactly one row per slave in `slaves` (name -> (daemon, device)),
    each at that slave's digest seq."""
    rows = parse_table(session.run("peers"))
    if len(rows) != len(slaves):
        return None
    by_device = {r["device"]: r for r in rows}
    for daemon, device in slaves.values():
        row = by_device.get(device)
        if (row is None or row["position"] != str(digest(daemon.data)["seq"]) or
                row["state"] != "streaming" or row["found_via"] != "incoming" or
                row["lag_changes"] != "0"):
            return None
    return rows


def check_tables(master_session, master, slave_sessions):
    mt = watched_tables(master_session)
    d = digest(master.data)
    check(set(mt) == {"menu", "orders"}, "master watched tables %r" % mt)
    check(sum(int(r["entries"]) for r in mt.values()) == d["count"],
          "master tables entries %r do not add up to the digest count %r" % (mt, d))
    check("%016x" % functools.reduce(lambda a, r: a ^ int(r["digest"], 16), mt.values(), 0) ==
          d["digest"], "master tables digests %r do not make the digest line %r" % (mt, d))
    for name, s in slave_sessions.items():
        st = watched_tables(s)
        check({n: (r["entries"], r["digest"]) for n, r in st.items()} ==
              {n: (r["entries"], r["digest"]) for n, r in mt.items()},
              "%s tables %r differ from the master's %r" % (name, st, mt))


def test():
    with Harness("console-status") as h:
        link = ["--heartbeat-ms", "200", "--timeout-ms", "1000"]
        master = h.master("master", "master", extra=link + ["--console", h.path("master.sock")])
        msess = h.socket_session(master, h.path("master.sock"))
        for i in range(5):
            put(master.data, "menu", "item-%d" % i, "price %d" % (100 + i))
        rc, out, err = run_tool(["--data", master.data, "load", "--records", "300",
                                 "--value-size", "40", "--table", "orders", "--batch", "50"])
        check(rc == 0, "possync load: %s%s" % (out, err))

        slaves, sessions = {}, {}
        for name in ("a", "b"):
            sock = h.path(name + ".sock")
            d = h.slave(name, name, master.port, ["--console", sock] + FAST_LINK)
            sessions[name] = h.socket_session(d, sock)
        for name, s in sessions.items():
            d = [x for x in h.daemons if x.name == name][0]
            wait_until(lambda: slave_status_matches(s, d, master), 20, name + " to settle")
            slaves[name] = (d, s.status()["device"])

        # Writes while both stream, then settle.
        for i in range(20):
            put(master.data, "orders" if i % 2 else "menu", "live-%02d" % i, "value %d" % i)
        for name, (d, _) in slaves.items():
            st = wait_until(lambda: slave_status_matches(sessions[name], d, master), 15,
                            "%s status to match its digest and the master's head" % name)
        mst = msess.status()
        md = digest(master.data)
        check(mst["role"] == "master" and int(mst["position"]) == md["seq"] and
              mst["master_head"] == str(md["seq"]) and mst["generation"] == md["generation"] and
              mst["link"].endswith(", 2 slave(s)"), "master status %r vs digest %r" % (mst, md))
        wait_until(lambda: peers_match(msess, slaves), 10, "master peers: one row per slave")
        check_tables(msess, master, sessions)

        # One slave goes: its row goes.
        slaves.pop("b")[0].stop()
        sessions.pop("b").close()
        wait_until(lambda: peers_match(msess, slaves), 10, "master peers: 1 row after b stopped")
        check(msess.status()["link"].endswith(", 1 slave(s)"), "master status after b stopped")

        # A reconnect: the master freezes past the slave's timeout.
        a, asess = slaves["a"][0], sessions["a"]
        stats0 = asess.stats()
        master.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: asess.status()["link"] in NOT_STREAMING, 10,
                       "a to notice the silent master")
        finally:
            master.proc.send_signal(signal.SIGCONT)
        wait_until(lambda: slave_status_matches(asess, a, master), 15, "a to stream again")
        stats1 = asess.stats()
        check(stats1["reconnects"] == stats0["reconnects"] + 1 and
              stats1["errors_timeout"] > stats0.get("errors_timeout", 0),
              "stats after one reconnect: %r -> %r" % (stats0, stats1))
        wait_until(lambda: peers_match(msess, slaves), 10, "master peers after the reconnect")

        # resync: a FULL sync on both sides, the same data after it.
        before = digest(a.data)
        mstats0 = msess.stats()
        check(asess.run("resync") == ["resync: full sync requested"], "resync answer")
        wait_until(lambda: asess.stats()["full_syncs"] == stats1["full_syncs"] + 1, 15,
                   "a's full_syncs to go up")
        wait_until(lambda: slave_status_matches(asess, a, master), 15, "a to stream after resync")
        check(digest(a.data) == before, "digest changed by a FULL resync of unchanged data")
        check(msess.stats()["full_syncs"] == mstats0["full_syncs"] + 1,
              "master full_syncs did not go up by one: %r" % msess.stats())
        check_tables(msess, master, sessions)

        reason = asess.error("accept-generation")
        check(reason == "not waiting for a new master generation (state streaming)",
              "accept-generation while streaming: %r" % reason)
        check(msess.error("accept-generation").startswith("accept-generation is for slaves"),
              "accept-generation on the master")
        check(msess.error("resync").startswith("resync is for slaves"), "resync on the master")
        # issue 12: a master has no outbox; its writing boards are `clients` (none wrote yet).
        check(msess.error("outbox").startswith("outbox is for slaves"), "outbox on the master")
        lines = msess.run("clients")
        check(parse_kv(lines[:1]) == {"clients": "0"} and parse_table(lines[1:]) == [],
              "clients on the master: %r" % lines)

        # The master's data is replaced: same store id and port, a fresh data directory.
        tables_before = parse_table(asess.run("tables"))
        digest_before = digest(a.data)
        status_before = asess.status()
        master.stop()
        msess.close()
        # The same board (its key kept: the slaves trust it) with a fresh data directory.
        os.makedirs(h.path("master2"))
        shutil.copy2(os.path.join(master.data, "board.key"), os.path.join(h.path("master2"), "board.key"))
        new = h.master("master2", "master2", port=master.port,
                       extra=link + ["--console", h.path("master2.sock")])
        put(new.data, "menu", "item-0", "a new price list")
        put(new.data, "orders", "first", "of the new generation")

        def waiting():
            st = asess.status()
            return "accept-generation" in st["waiting"] and st
        st = wait_until(waiting, 15, "a's status to say why it waits")
        check(st["link"] in NOT_STREAMING and st["generation"] == status_before["generation"] and
              st["position"] == status_before["position"], "status while waiting: %r" % st)
        wait_until(lambda: asess.status()["link"] == "waiting-operator", 10,
                   "a to wait for the operator")
        check(parse_table(asess.run("tables")) == tables_before, "tables changed while waiting")
        check(digest(a.data) == digest_before, "data changed while waiting for the operator")

        note = asess.run("accept-generation")
        check(note == ["accept-generation: new master generation accepted: taking a FULL sync"],
              "accept-generation answer %r" % note)
        st = wait_until(lambda: slave_status_matches(asess, a, new), 15,
                        "a to converge to the new master")
        check(st["generation"] == digest(new.data)["generation"] != digest_before["generation"] and
              st["waiting"] == "-", "status after accept-generation: %r" % st)
        nsess = h.socket_session(new, h.path("master2.sock"))
        wait_until(lambda: peers_match(nsess, slaves), 10, "the new master's peers")
        check_tables(nsess, new, sessions)
        a.stop()
        new.stop()


if __name__ == "__main__":
    main(test)
