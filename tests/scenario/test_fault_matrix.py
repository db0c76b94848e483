#!/usr/bin/env python3
"""Scenario: the fault matrix (issue 11, "Network faults"). Every fault of relay.py is applied to
a slave's link while the master keeps writing, then removed.

A master (tables menu, orders, ctr) and one slave that reaches it through relay.py. For each
fault: a bounded writer (`scenario_writer counter`, 30 transactions ~50 ms apart) runs on the
master while the fault is on; a reader polls the slave's directory all along (`check-counter`,
which fails on any torn or partial state, and `possync info`): every read must succeed, the
position must never go back. Then the fault is removed and the slave must converge (equal
digests, then mdb_dump of every watched table byte-identical: harness.converge) without a FULL
sync (the master's log covers everything). Per fault, also:
  - delay 200 +- 50 ms, 1 Mbit/s, 1-byte segments: the link survives (no reconnection);
  - half-open (blackhole: read and thrown away; stall: not read): both sockets stay open; the
    slave notices by heartbeat silence, within 3 x --timeout-ms (generous: the machine is
    shared), and says so in its log;
  - RST: the slave reconnects;
  - one corrupted byte (either direction): the link's seal catches it (a record that fails
    authentication, or a corrupted record length: logged; the frame checksum below it is the
    second line of defence), nothing is
    applied, the link is re-made; the digests at the end prove nothing corrupt reached LMDB;
  - a range of bytes duplicated or dropped (either direction): the framing breaks, the link is
    re-made, nothing wrong is applied.
Prints a table (fault, time to converge after removal, reconnections, FULL syncs, records
checked) for RELIABILITY.md.
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402
from relay import (Bandwidth, Blackhole, Corrupt, Delay, DropRange, DuplicateRange, Relay,  # noqa: E402
                   Reset, Slice, Stall)

STORE = "store-faults"
TABLES = ["menu", "orders", "ctr"]
TIMEOUT_MS = 3000
LOST = r"link to master (lost|closed)"
SILENCE = r"link to master lost: no frame from the master for (\d+) ms"
# Since links are sealed (issue 14) a corrupted byte fails the record's authentication, or, in a
# record's length, makes a record over the limit or one that never completes (then the heartbeat).
SEAL_CAUGHT = r"(checksum|failed authentication|a record of \d+ bytes|no frame from the)"
CHECKSUM = r"link to master lost: [^\n]*" + SEAL_CAUGHT
MASTER_CHECKSUM = r"slave [^\n]*" + SEAL_CAUGHT


def one_shot(direction, make):
    """A fault that acts once on the next traffic of the newest link (armed a few bytes ahead)."""
    return lambda relay: relay.arm_after(direction, 7, make)


def whole(mode_class, *args):
    return lambda relay: relay.set_both(mode_class(*args))


def reset(relay):
    relay.set_both(Reset())
    relay.reset_links()  # an idle link goes too, not only at its next byte


# name, how to apply it, what must happen: "survive" (no reconnection), "silence" (half-open:
# detected by heartbeats), "reconnect" (any loss), "checksum" (slave's frame checksum),
# "master-checksum" (the master's frame checksum).
FAULTS = [
    ("delay 200+-50 ms (both ways)", lambda r: r.set_both(Delay(0.2, 0.05)), "survive"),
    ("bandwidth 1 Mbit/s (both ways)", whole(Bandwidth, 1_000_000), "survive"),
    ("1-byte segments (both ways)", whole(Slice), "survive"),
    ("half-open: blackhole (both ways)", whole(Blackhole), "silence"),
    ("half-open: stall, not read (both ways)", whole(Stall), "silence"),
    ("RST (both ways)", reset, "reconnect"),
    ("1 byte corrupted (master->slave)", one_shot("down", lambda at, n: Corrupt(at, n)), "checksum"),
    ("1 byte corrupted (slave->master)", one_shot("up", lambda at, n: Corrupt(at, n)), "master-checksum"),
    ("100 bytes duplicated (master->slave)", one_shot("down", lambda at, n: DuplicateRange(at, 100, n)),
     "reconnect"),
    ("100 bytes dropped (master->slave)", one_shot("down", lambda at, n: DropRange(at, 100, n)), "reconnect"),
    ("20 bytes duplicated (slave->master)", one_shot("up", lambda at, n: DuplicateRange(at, 20, n)),
     "reconnect"),
    ("20 bytes dropped (slave->master)", one_shot("up", lambda at, n: DropRange(at, 20, n)), "reconnect"),
]


def read_slave(slave):
    """What a POS application on the slave reads: a consistent counter table and a position."""
    counter = harness.writer("check-counter", "--data", slave.data)
    i = harness.info(slave.data)
    return i["generation"], int(i["seq"]), counter


def check_reads(name, results, errors):
    if errors:
        harness.fail(f"{name}: a read on the slave failed during the fault: {errors[0]}")
    check(results, f"{name}: no read on the slave completed during the fault")
    last = None
    for _, (gen, seq, _) in results:
        if last:
            check(gen == last[0], f"{name}: the slave's generation changed during the fault ({last[0]} -> {gen})")
            check(seq >= last[1], f"{name}: the slave's position went back from {last[1]} to {seq}")
        last = (gen, seq)
    return len(results)


def run_fault(scn, master, slave, relay, name, apply, expect):
    smark, mmark = slave.mark(), master.mark()
    fulls = slave.count(r"FULL sync complete")
    head_before = int(harness.info(master.data)["seq"])
    reads = harness.Poller(lambda: read_slave(slave), interval=0.2).start()
    writer = scn.spawn([harness.WRITER, "counter", "--data", master.data, "--count", "30",
                        "--pause-ms", "50", "--every", "1"])
    t_apply = time.monotonic()
    mode = apply(relay)
    detected_after = None
    if expect == "silence":
        m = slave.wait_log(SILENCE, since=smark, timeout=3 * TIMEOUT_MS / 1000)
        detected_after = time.monotonic() - t_apply
        check(int(m.group(1)) >= TIMEOUT_MS, f"{name}: the slave gave up after {m.group(1)} ms of silence, "
                                              f"before --timeout-ms {TIMEOUT_MS}")
    elif expect in ("checksum", "master-checksum", "reconnect"):
        if hasattr(mode, "done"):
            harness.wait_until(f"{name} to act on the link", lambda: mode.done, timeout=20)
        if expect == "checksum":
            slave.wait_log(CHECKSUM, since=smark, timeout=20)
        elif expect == "master-checksum":
            master.wait_log(MASTER_CHECKSUM, since=mmark, timeout=20)
        slave.wait_log(LOST, since=smark, timeout=20)
    check(writer.wait(60) == 0, f"{name}: the writer failed: {writer.stderr.read().decode(errors='replace')}")
    if expect == "survive":
        time.sleep(0.5)  # let the fault see the last of the writer's traffic
    relay.pass_all()
    t_removed = time.monotonic()
    reads.stop()
    n_reads = check_reads(name, reads.results, reads.errors)
    head = int(harness.info(master.data)["seq"])
    check(head >= head_before + 30, f"{name}: the master wrote only {head - head_before} transactions")
    want = harness.digest(master.data)
    harness.wait_until(f"{slave.name} to converge after '{name}'",
                       lambda: harness.digest(slave.data) == want, timeout=60, interval=0.05)
    converge_s = time.monotonic() - t_removed
    harness.converge(master, [slave])
    lost = slave.count(LOST, since=smark)
    if expect == "survive":
        check(lost == 0, f"{name}: the link was lost {lost} times (the fault must be survived)")
    else:
        check(lost >= 1, f"{name}: the slave never noticed the fault")
    new_fulls = slave.count(r"FULL sync complete") - fulls
    check(new_fulls == 0, f"{name}: {new_fulls} FULL syncs although the log covers the slave's position")
    if expect != "survive":
        check(slave.count(r"resumes INCREMENTAL", since=smark) >= 1, f"{name}: the slave did not resume INCREMENTAL")
    counter = harness.writer("check-counter", "--data", slave.data)
    records = int(want.rsplit("count=", 1)[1])
    say(f"{name}: converged {converge_s:.2f} s after removal; link lost {lost}x; {n_reads} reads during the "
        f"fault all consistent; {counter}")
    return (name, converge_s, lost, new_fulls, records, detected_after, n_reads)


def main(scn):
    t0 = time.monotonic()
    common = ["--timeout-ms", str(TIMEOUT_MS)]
    # The master waits twice as long for a silent slave as the slave for a silent master: on a
    # half-open link both time out, and the slave's detection is what this test checks. With
    # equal timeouts the master's (same 3 s, timers started microseconds apart) sometimes came
    # first on a loaded machine and the slave then saw "master closed the link" instead.
    master = scn.master("master", STORE, TABLES, args=["--timeout-ms", str(2 * TIMEOUT_MS)]).start()
    say(harness.writer("mixed", "--data", master.data, "--ops", "3000", "--seed", "11", "--tables", "menu,orders"))
    say(harness.writer("counter", "--data", master.data, "--count", "10"))
    relay = Relay(("127.0.0.1", master.port)).start()
    scn.servers.append(relay)  # closed at cleanup
    slave = scn.slave("slave", STORE, relay, args=common).start()
    slave.wait_log(r"FULL sync complete")
    harness.converge(master, [slave])
    only = os.environ.get("FAULTS")  # e.g. FAULTS=blackhole,corrupt runs the faults whose name has one
    rows = []
    for name, apply, expect in FAULTS:
        if only and not any(w in name for w in only.split(",")):
            continue
        say(f"--- fault: {name}")
        rows.append(run_fault(scn, master, slave, relay, name, apply, expect))
    check(slave.count(r"FULL sync complete") == 1, "the slave needed a FULL sync after its first one")
    say(harness.writer("check-counter", "--data", master.data))
    slave.stop()
    master.stop()
    print()
    print(f"Fault matrix ({time.monotonic() - t0:.0f} s; --heartbeat-ms 300 --timeout-ms {TIMEOUT_MS}; 30 "
          f"transactions written during each fault)")
    print("| fault | detected after | converged after removal | links lost | FULL syncs | records checked "
          "| reads during fault |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, conv, lost, fulls, records, detected, n_reads in rows:
        det = f"{detected:.1f} s (silence)" if detected is not None else ("-" if lost == 0 else "at once")
        print(f"| {name} | {det} | {conv:.2f} s | {lost} | {fulls} | {records} | {n_reads}, all consistent |")
    print(flush=True)


if __name__ == "__main__":
    harness.run(main)
