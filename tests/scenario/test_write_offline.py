#!/usr/bin/env python3
"""Issue 12: a slave cut off from its master queues 10,000 requests and drains them in order;
a small outbox bound gives a clear error.

A master and two slaves that reach it through relay.py (real daemons on 127.0.0.1): till1 with
the default outbox bound, till2 with --outbox-max-bytes 4096 (the smallest allowed). The relay
black-holes both directions (half-open links: no FIN, no RST; the slaves notice by their
heartbeat timeout and keep reconnecting into the black hole).

- Cut off, till1 queues 10,000 requests (scenario_writer orders --no wait: one transaction,
  one request each): order i puts orders/off/i, ADDs +1 to stock/items, and puts orders/last = i
  requiring orders/last to hold i-1 (--chain): a request applied out of order or twice would
  be rejected, and so would every later one. Nothing reaches the master; till1 reads none of
  its queued writes (they are not applied locally) and `possync outbox` counts 10,000.
- Cut off, till2 queues `possync put --no-wait` until the bound: the failing write exits 1 with
  one line naming the outbox and its limit, and queues nothing.
- The link comes back: both outboxes drain. A reader polling till1 meanwhile (check-orders, one
  read transaction each) sees every order with its +1 and its orders/last step, never without
  or twice, and never goes backwards. The master's clients show till1's 10,000 requests
  applied, none rejected (so in order, each once), till2's queued requests applied and the
  refused one absent; every board holds orders/last = 10000, all 10,000 markers and
  stock/items = 10,000; digests and tables are equal; the outboxes are empty; till2 writes again.

The cut-off lasts 10 s (and until each slave has lost its link twice: once by its heartbeat
timeout, once more reconnecting into the black hole), not the issue's 30 s: writing the 10,000
requests takes about a second, and the outbox does not care how long the master is away, only
how much is queued; 20 s more would only slow the suite. Requests the slave had sent into the
black hole are lost on the way and sent again after the reconnect (the master applies each once).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNC, check, possync, say, wait_until  # noqa: E402
from relay import Blackhole, Relay  # noqa: E402
from writes import TABLES, Till, check_orders, clients, device, get, order_key, outbox, stock, synced  # noqa: E402

COUNT = 10000
BOUND = 4096
CUT = 10.0  # seconds (not the 30: see above)


def read_orders(data):
    """scenario_writer check-orders on `data`: the number of off/ orders (it checks the counter
    and orders/last agree with it, in one read transaction)."""
    rc, out, err = harness.run_tool([harness.WRITER, "check-orders", "--data", data, "--prefix", "off"],
                                    check_rc=False)
    check(rc == 0, err.strip())
    return int(out.split()[0].split("=")[1])


def main(scn):
    master = scn.master("master", "shop", TABLES)
    master.start()
    relay = Relay(("127.0.0.1", master.port)).start()
    scn.servers.append(relay)  # closed at cleanup
    till1 = scn.slave("till1", "shop", relay).start()
    till2 = scn.slave("till2", "shop", relay, args=["--outbox-max-bytes", str(BOUND)]).start()
    slaves = [till1, till2]
    for s in slaves:
        wait_until(f"{s.name} synced", lambda s=s: synced(s.data), timeout=60, interval=0.2)
    devices = {s.name: device(s.data) for s in slaves}

    marks = {s.name: s.mark() for s in slaves}
    relay.set_both(Blackhole())
    cut = time.monotonic()
    say("the relay black-holes both slaves' links")

    t = Till(scn, till1, "off", COUNT, "--add", 1, "--last-key", "last", "--chain", 1)
    summary = t.finish(timeout=180)
    check(summary["pending"] == str(COUNT) and summary["committed"] == "0" and summary["rejected"] == "0",
          f"the cut-off till did not queue every request: {summary}")
    box = outbox(till1.data)
    say(f"till1 queued {COUNT} requests in {time.monotonic() - cut:.1f} s: outbox {box}")
    check(box.get("count") == str(COUNT) and box.get("oldest_request") == "1", f"till1's outbox: {box}")
    check(get(till1.data, "orders", "last") is None and stock(till1.data) is None,
          "till1 reads its queued writes before the master applied them")
    check(get(master.data, "orders", "last") is None, "a request reached the master through the black hole")

    queued = []
    for i in range(1, 1001):
        rc, out, err = harness.run_tool([POSSYNC, "--data", till2.data, "put", "--no-wait", "orders", f"full/{i}",
                                         "x" * 40], check_rc=False)
        if rc != 0:
            say(f"till2's write {i} with {len(queued)} queued: exit {rc}: {err.strip()}")
            check(rc == 1 and err.count("\n") == 1, f"the full outbox's error is not one line with exit 1: {rc} {err!r}")
            check("outbox" in err and str(BOUND) in err, f"the error does not name the outbox and its limit: {err!r}")
            break
        check(out.strip() == f"queued request {i}", f"till2's write {i} printed {out!r}")
        queued.append(f"full/{i}")
    else:
        harness.fail(f"till2 queued 1000 requests past its {BOUND}-byte bound")
    check(queued, "till2's bound refused its first request")
    check(outbox(till2.data).get("count") == str(len(queued)), f"the refused write changed the outbox: "
                                                                f"{outbox(till2.data)}")

    # Stay cut off until both slaves have noticed (heartbeat timeout, 3 s) and tried again into the
    # black hole, and at least CUT seconds in all.
    for s in slaves:
        s.wait_log(r"link to master (lost|closed)", count=2, since=marks[s.name], timeout=60)
    time.sleep(max(0.0, CUT - (time.monotonic() - cut)))
    # A reader on till1 during the drain (one read transaction each, as a POS application): each
    # order it sees came with its +1 and its orders/last step, never twice, never without them,
    # and what it sees only grows.
    reader = harness.Poller(lambda: read_orders(till1.data), interval=0.2).start()
    relay.pass_all()
    relay.reset_links()  # the black-holed links lost bytes: end them now rather than at the timeout
    say(f"link back after {time.monotonic() - cut:.1f} s")
    for s in slaves:
        wait_until(f"{s.name}'s outbox to drain", lambda s=s: outbox(s.data).get("count") == "0", timeout=150,
                   interval=0.5)
    say(f"drained {time.monotonic() - cut:.1f} s after the cut")
    seen = reader.stop()
    check(not reader.errors, f"a reader on till1 saw an inconsistent state: {reader.errors[:3]}")
    counts = [n for _, n in seen]
    check(counts and all(a <= b for a, b in zip(counts, counts[1:])), f"till1's reads went backwards: {counts}")
    say(f"{len(counts)} reads on till1 during the drain, {len(set(counts))} distinct states, all consistent")

    harness.converge(master, slaves, timeout=60)
    rows = clients(master.data)
    check(rows.get(devices["till1"]) is not None and rows[devices["till1"]][0] == COUNT
          and rows[devices["till1"]][2] == COUNT and rows[devices["till1"]][3] == 0,
          f"till1's client row (last_request, last_seq, applied, rejected) = {rows.get(devices['till1'])}: "
          f"not {COUNT} requests applied in order")
    check(rows.get(devices["till2"]) is not None and rows[devices["till2"]][2] == len(queued),
          f"till2's client row {rows.get(devices['till2'])}, {len(queued)} queued")
    expected = {order_key("off", i): f"off {i}" for i in range(1, COUNT + 1)}
    expected["last"] = str(COUNT)
    expected.update({k: "x" * 40 for k in queued})
    for b in [master] + slaves:
        check_orders(b.data, b.name, expected)
        check(stock(b.data) == COUNT, f"{b.name}: stock/items = {stock(b.data)}, expected {COUNT}")
    for s in slaves:
        box = outbox(s.data)
        check(box.get("bytes") == "0" and box.get("last_rejection") == "-", f"{s.name}'s drained outbox: {box}")
    possync(till2.data, "put", "--wait-ms", "60000", "orders", "after", "ok")
    check(get(master.data, "orders", "after") == "ok", "till2's write after the drain did not reach the master")
    say(f"every board: {COUNT} markers, orders/last = {COUNT}, stock/items = {COUNT}; clients {rows}")


if __name__ == "__main__":
    harness.run(main)
