#!/usr/bin/env python3
"""Issue 12: every till takes orders at once (real daemons, 1 master + 3 slaves on 127.0.0.1).

Each board runs a till (scenario_writer orders) that writes 250 orders under its own key prefix,
one transaction (on a slave: one forwarded request) each, every one also ADDing a board-specific
negative delta to the shared stock counter stock/items. While they write, one process per board
claims the "last item" at the same moment (require stock/last absent + put), and one per slave
claims stock/spare (the master's own claim commits at once and usually wins "last"; "spare" is
raced by forwarded requests alone).

At quiescence:
- every till's transactions were all acknowledged (committed on the master, applied on the
  writing board); exactly one claim of each key won, the others were rejected with a reason naming
  the table and the key, and stock/last holds the winner;
- every board holds every order exactly once with its value (digests equal, tables identical
  byte for byte: harness.converge), and the counter equals its start plus the sum of all ADDs
  (an ADD lost or applied twice would show);
- `possync outbox` on each slave shows count 0; on the master it lists each slave with its last
  request id and applied/rejected counts matching what the slave wrote, and the console's
  `clients` shows the same rows.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402
from writes import Till, check_orders, clients, device, order_key, outbox, start_store, stock  # noqa: E402

COUNT = 250
START = 100000


def claimed(key, group):
    """Checks exactly one of the claim writers `group` won `key` and the others were rejected
    with a reason naming table and key; returns the winning board's name."""
    outcomes = {}
    for c in group:
        outcomes[c.board.name] = c.finish()["claim"]
        if outcomes[c.board.name] == "rejected":
            reason = c.acks()["claim"][1]
            say(f"{c.board.name}'s claim of {key} rejected: {reason}")
            check("stock" in reason and key in reason, f"the rejection does not name table and key: {reason}")
    winners = [n for n, o in outcomes.items() if o == "won"]
    check(len(winners) == 1 and list(outcomes.values()).count("rejected") == len(group) - 1,
          f"{key} was not claimed exactly once: {outcomes}")
    say(f"stock/{key} went to {winners[0]}")
    return winners[0]


def main(scn):
    master, slaves = start_store(scn, 3, start_stock=START)
    boards = [master] + slaves
    deltas = {master.name: -1, "till1": -2, "till2": -3, "till3": -5}
    # Paced a little (5 ms after each commit) so the four tills' requests interleave at the master;
    # the four claims start at the same moment, while the orders are being written.
    tills = [Till(scn, b, f"o-{b.name}", COUNT, "--add", deltas[b.name], "--wait-ms", 120000, "--pause-ms", 5,
                  "--every", 1) for b in boards]
    claims = [Till(scn, b, f"c-{b.name}", 0, "--claim", "last", "--wait-ms", 120000) for b in boards]
    # The master's own claim commits at once, so it usually wins "last": "spare" is claimed by the
    # slaves alone, whose forwarded requests race at the master.
    spares = [Till(scn, b, f"s-{b.name}", 0, "--claim", "spare", "--wait-ms", 120000) for b in slaves]
    for t in tills:
        s = t.finish()
        check(s["committed"] == str(COUNT) and s["rejected"] == "0" and s["pending"] == "0",
              f"{t.board.name}: not every order was acknowledged: {s}")
    winners = {key: claimed(key, group) for key, group in (("last", claims), ("spare", spares))}

    harness.converge(master, slaves, timeout=60)
    expected = {order_key(t.prefix, i): f"{t.prefix} {i}" for t in tills for i in range(1, COUNT + 1)}
    want_stock = START + COUNT * sum(deltas.values())
    for b in boards:
        check_orders(b.data, b.name, expected)
        got = stock(b.data)
        check(got == want_stock, f"{b.name}: stock/items = {got}, expected {START} + {COUNT} * "
                                 f"{sum(deltas.values())} = {want_stock}")
        check(harness.possync(b.data, "get", "stock", "last").strip() == f"c-{winners['last']}",
              f"{b.name}: stock/last does not name the winner")
        check(harness.possync(b.data, "get", "stock", "spare").strip() == f"s-{winners['spare']}",
              f"{b.name}: stock/spare does not name the winner")
    say(f"every board: {len(expected)} orders once each, stock/items = {want_stock}")

    rows = clients(master.data)
    for s in slaves:
        box = outbox(s.data)
        check(box.get("count") == "0" and box.get("bytes") == "0", f"{s.name}'s outbox is not empty: {box}")
        # COUNT orders and two claims: requests 1..COUNT+2, a claim rejected unless it won.
        won = [winners["last"], winners["spare"]].count(s.name)
        row = rows.get(device(s.data))
        check(row is not None, f"{s.name} is not among the master's clients: {rows}")
        check(row[0] == COUNT + 2 and row[2] == COUNT + won and row[3] == 2 - won,
              f"{s.name}: master's client row (last_request, last_seq, applied, rejected) = {row}")
    ok, lines = harness.console(scn.path("master.sock"), "clients")
    check(ok and lines and lines[0] == "clients: 3", f"console clients on the master: {lines}")
    for s in slaves:
        row = [line.split() for line in lines if line.split()[:1] == [device(s.data)]]
        check(len(row) == 1 and [int(c) for c in row[0][1:]] == list(rows[device(s.data)]),
              f"console clients row for {s.name}: {row} vs {rows[device(s.data)]}")
    say(f"master's clients: {rows}")


if __name__ == "__main__":
    harness.run(main)
