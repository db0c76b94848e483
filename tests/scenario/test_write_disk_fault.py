#!/usr/bin/env python3
"""Issue 12: the master's disk fails some commits while a slave's requests drain: none is lost.

A master under `fiu-run` (libfiu, as test_disk_faults.py) and one slave. The slave queues 2,000
requests (scenario_writer orders --chain: request i puts orders/last = i requiring it to hold
i-1, ADDs +1 to stock/items). While they drain, the master's fdatasync fails with ENOSPC at
random (30 %, switched on before the first request) until 3 commits of request batches failed: the master group-commits what
queued (up to a window of 32 here), a batch whose commit fails records none of its requests,
the master closes the link, and the slave sends them again on its next link. (Before group
commit this waited for 10 failed commits of one request each; a drain now makes about 30 times
fewer commits, so 3 failed batches put as many requests through the fault.)

Every request must end applied exactly once, in order: the master's clients show 2,000 applied
and none rejected (a request lost or applied out of order breaks the chain and every later
request is rejected), orders/last = 2000 and stock/items = 2000 on both boards, which converge.

The defect this found: the master kept applying the requests the closed link had sent after
the failed one; the failed one, resent, then sat below the client's last request id and was
answered as "handled before, outcome no longer kept": a lost write (1,000+ rejections here).
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say, wait_until  # noqa: E402
from test_disk_faults import ENOSPC, FDATASYNC, FIU_CTRL, FIU_RUN, Fiu  # noqa: E402
from writes import TABLES, Till, check_orders, clients, device, get, order_key, outbox, stock, synced  # noqa: E402

COUNT = 2000


def main(scn):
    master = scn.master("master", "shop", TABLES)
    fiu = Fiu(scn, master)
    master.start()
    till = scn.slave("till1", "shop", master).start()
    wait_until("till1 synced", lambda: synced(till.data), timeout=60, interval=0.2)
    mark = master.mark()
    # The fault goes on before the first request is queued: a drain of 2,000 requests in batches
    # of up to 32 takes well under a second on a fast machine, so a fault switched on once some
    # were applied could miss it (a CI run saw the drain end before `fiu-ctrl` ran). Each failed
    # commit costs a reconnect, so the drain lasts until the fault is cleared.
    fiu.enable_random(FDATASYNC, ENOSPC, 0.3)
    t = Till(scn, till, "d", COUNT, "--add", 1, "--last-key", "last", "--chain", 1)
    summary = t.finish()
    check(summary["pending"] == str(COUNT), f"till1 did not queue {COUNT} requests: {summary}")
    dev = device(till.data)

    def failures():
        return master.count(r"cannot apply \d+ write request\(s\): .*No space left on device", since=mark)

    wait_until("3 request batch commits to fail with ENOSPC on the master", lambda: failures() >= 3, timeout=60)
    fiu.disable(FDATASYNC)
    failed = failures()
    applied = clients(master.data).get(dev)
    say(f"{failed} request commits failed with ENOSPC on the master; client row then: {applied}")
    wait_until("till1's outbox to drain", lambda: outbox(till.data).get("count") == "0", timeout=120, interval=0.5)
    harness.converge(master, [till], timeout=60)
    row = clients(master.data).get(device(till.data))
    check(row is not None and row[0] == COUNT and row[2] == COUNT and row[3] == 0,
          f"till1's client row (last_request, last_seq, applied, rejected) = {row}: not {COUNT} requests applied "
          f"once each in order (last rejection: {outbox(till.data).get('last_rejection')})")
    expected = {order_key("d", i): f"d {i}" for i in range(1, COUNT + 1)}
    expected["last"] = str(COUNT)
    for b in (master, till):
        check_orders(b.data, b.name, expected)
        check(stock(b.data) == COUNT, f"{b.name}: stock/items = {stock(b.data)}, expected {COUNT}")
    check(get(master.data, "orders", "last") == str(COUNT), "orders/last is not the last request's")
    say(f"{COUNT} requests applied once each, in order, through {failed} failed commits")


if __name__ == "__main__":
    if not FIU_RUN or not FIU_CTRL:
        print("SKIP: fiu-run/fiu-ctrl not installed (tools/setup installs fiu-utils)", flush=True)
        sys.exit(77)
    if harness.SANITIZED:
        print("SKIP: libfiu's LD_PRELOAD cannot run beside ASan; build/ runs this test", flush=True)
        sys.exit(77)
    harness.run(main)
