#!/usr/bin/env python3
"""Issue 12: SIGKILL of the master, then of a slave, while slaves forward their requests.

A master and two slaves (real daemons on 127.0.0.1). Each slave runs a till (scenario_writer
orders) of 600 orders, one request each, every one also ADDing +1 to stock/items: the counter
then counts the requests the master applied, and each order key is that request's marker.

1. While both slaves forward with hundreds of requests queued (the master has applied at least
   100 of till1's; up to 32 per link are in flight, some committed but not yet answered), the
   master gets SIGKILL; the tills keep queuing; the master restarts on the same data and port.
   Each till ends with a claim of stock/last (require absent + put): exactly one wins.
2. New tills on both slaves; while till1 forwards (at least 100 applied), till1's daemon gets
   SIGKILL; its till keeps queuing into the outbox; the daemon restarts on the same data.

Every till's transactions end acknowledged (committed on the master and applied on the writing
board). At quiescence every board holds every marker once, the counter equals the number of
requests written (a request lost or applied twice would show), the digests and tables are
equal, the outboxes are empty, and the master's clients show each slave with its last request
id and exactly that many applied, none rejected.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say, wait_until  # noqa: E402
from writes import Till, check_orders, clients, device, order_key, outbox, start_store, stock  # noqa: E402

COUNT = 600


def applied(master, dev):
    row = clients(master.data).get(dev)
    return row[2] if row else 0


def tills(scn, slaves, phase, *extra):
    # Paced lightly (2 ms after every 4th commit): the outbox runs ahead of the forwarding, so many
    # requests are in flight when the SIGKILL comes, and the till is still writing.
    return [Till(scn, s, f"{phase}-{s.name}", COUNT, "--add", 1, "--wait-ms", 150000, "--pause-ms", 2, "--every", 4,
                 *extra) for s in slaves]


def finish(group):
    for t in group:
        s = t.finish(timeout=180)
        check(s["committed"] == str(COUNT) and s["rejected"] == "0" and s["pending"] == "0",
              f"{t.board.name}: not every request was acknowledged: {s}")


def main(scn):
    master, slaves = start_store(scn, 2)
    devices = {s.name: device(s.data) for s in slaves}
    written = []

    # 1. The master dies while both slaves forward.
    group = tills(scn, slaves, "a", "--claim", "last")  # each ends claiming stock/last
    written += group
    base = applied(master, devices["till1"])
    wait_until("the master to apply 100 of till1's requests", lambda: applied(master, devices["till1"]) >= base + 100,
               timeout=60)
    say(f"SIGKILL of the master: applied {clients(master.data)}; queued: till1 {outbox(slaves[0].data).get('count')}, "
        f"till2 {outbox(slaves[1].data).get('count')}")
    master.kill()
    time.sleep(1.0)  # the tills keep queuing; the slaves' links are down
    master.restart_on_same_port()
    finish(group)
    claims = {t.board.name: t.summary["claim"] for t in group}
    check(sorted(claims.values()) == ["rejected", "won"], f"stock/last not claimed exactly once: {claims}")
    say(f"after the master's restart: {clients(master.data)}; claims {claims}")

    # 2. A slave dies while it forwards; its till keeps queuing into the outbox.
    group = tills(scn, slaves, "b")
    written += group
    base = applied(master, devices["till1"])
    wait_until("the master to apply 100 of till1's new requests",
               lambda: applied(master, devices["till1"]) >= base + 100, timeout=60)
    say(f"SIGKILL of till1: applied {clients(master.data)}, till1's outbox {outbox(slaves[0].data).get('count')}")
    slaves[0].kill()
    time.sleep(1.0)
    slaves[0].start()
    finish(group)

    harness.converge(master, slaves, timeout=60)
    expected = {order_key(t.prefix, i): f"{t.prefix} {i}" for t in written for i in range(1, COUNT + 1)}
    for b in [master] + slaves:
        check_orders(b.data, b.name, expected)
        got = stock(b.data)
        check(got == len(expected), f"{b.name}: stock/items = {got}, but {len(expected)} requests were written "
                                    f"(+1 each): {'lost' if got < len(expected) else 'applied twice'}")
    rows = clients(master.data)
    for s in slaves:
        box = outbox(s.data)
        check(box.get("count") == "0", f"{s.name}'s outbox is not empty: {box}")
        # 2 * COUNT orders and the claim: applied once each, the claim rejected unless it won.
        won = 1 if claims[s.name] == "won" else 0
        row = rows.get(devices[s.name])
        check(row is not None and row[0] == 2 * COUNT + 1 and row[2] == 2 * COUNT + won and row[3] == 1 - won,
              f"{s.name}: master's client row (last_request, last_seq, applied, rejected) = {row}, "
              f"expected {2 * COUNT + 1} requests handled once each")
    say(f"every board: {len(expected)} markers once each, stock/items = {len(expected)}; clients {rows}")


if __name__ == "__main__":
    harness.run(main)
