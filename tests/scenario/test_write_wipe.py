#!/usr/bin/env python3
"""Issue 12: a slave whose data directory is wiped and made again with the same device id keeps
its writes.

The master remembers the last request id it handled per device (possync.clients) and answers a
request id it handled before with the stored outcome, applying nothing: that is what makes a
resend exactly once. A board made again from nothing with the old device id would start its ids
at 1 again, and each new write would look like one handled before: acknowledged, never applied.
The master's Welcome says the device's last handled id and the slave's ids continue above it.

- slave "till" writes 5 orders through the daemons (each waits until applied locally);
- the slave is stopped, its directory deleted, and it starts again with the same --device;
- after its FULL sync, 3 more orders written on it are applied on the master and back on the
  slave (before the fix they were "applied" by the stored outcomes of requests 1..3 and lost);
- the slave's next request id is above the master's record of it.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, possync, say  # noqa: E402
from writes import facts  # noqa: E402

STORE = "store-wipe"


def main(scn):
    master = scn.master("master", STORE, ["orders"]).start()
    slave = scn.slave("till", STORE, master, ["--device", "till-1"]).start()
    possync(master.data, "put", "orders", "m0", "from the master")
    harness.converge(master, [slave])
    for i in range(5):
        possync(slave.data, "put", "orders", f"a{i}", f"first life {i}")
    harness.converge(master, [slave])
    before = facts(possync(slave.data, "outbox"))
    check(before.get("next_request") == "6", f"the slave's next request is not 6: {before}")

    slave.stop()
    shutil.rmtree(slave.data)
    say("slave directory wiped; starting it again as till-1")
    slave.start()
    harness.converge(master, [slave])
    for i in range(3):
        possync(slave.data, "put", "orders", f"b{i}", f"second life {i}")
    for i in range(3):
        value = possync(master.data, "get", "orders", f"b{i}").strip()
        check(value == f"second life {i}", f"write b{i} of the wiped slave is not on the master: {value!r}")
    harness.converge(master, [slave])
    after = facts(possync(slave.data, "outbox"))
    say(f"wiped slave's outbox after 3 writes: {after}")
    check(int(after.get("next_request", "0")) == 9, f"request ids did not continue above 5: {after}")
    check(after.get("count") == "0", f"requests left in the outbox: {after}")


if __name__ == "__main__":
    harness.run(main)
