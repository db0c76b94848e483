#!/usr/bin/env python3
"""Issue 15: a slave's lag is right whatever its wall clock says.

Store boards often have no NTP (no internet) and their clocks disagree by minutes or hours. Two
slaves run under libfaketime (Debian's faketime), one 3 hours ahead of the master and one 3 hours
behind, both through relay.py with 300 ms of latency from the master. While a writer commits 600
transactions on the master (5 ms apart), the slaves' `status` and the master's `peers` are
sampled: every lag_ms must be at most a few hundred milliseconds (under 5 s here), never the
clocks' difference (10,800,000 ms). Lag is measured on each board's own monotonic clock: on a
slave, the time since the master's last Ping arrived plus half a round trip while it is behind;
on the master, the age of the oldest change a slave has not acknowledged (the 300 ms latency
keeps the slaves' Acks late, so the master sees them behind). Both slaves end equal to the
master.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, console, say  # noqa: E402
from relay import Delay, Relay  # noqa: E402

STORE = "store-clock-skew"
TABLES = ["ctr"]
SKEWS = {"ahead": "+3h", "behind": "-3h"}
BOUND_MS = 5000
FAKETIME = shutil.which("faketime")


def fields(lines):
    return dict(line.split(": ", 1) for line in lines if ": " in line)


def main(scn):
    msock = scn.path("master.sock")
    master = scn.master("master", STORE, TABLES, args=["--console", msock]).start()
    relay = Relay(("127.0.0.1", master.port)).start()
    scn.servers.append(relay)
    relay.set_mode("down", Delay(0.3, 0.0))
    slaves = {}
    for name, skew in SKEWS.items():
        s = scn.slave(name, STORE, relay, args=["--console", scn.path(name + ".sock")])
        # libfaketime preloaded through env(1), which execs: the daemon keeps the harness's
        # process (stopped and killed with the scenario). The faketime(1) wrapper forks instead,
        # and its daemons outlived the test.
        s.command = (lambda d=s, k=skew: ["env", "LD_PRELOAD=/usr/$LIB/faketime/libfaketime.so.1", f"FAKETIME={k}"]
                     + harness.Daemon.command(d))
        s.start()
        s.wait_log(r"FULL sync complete", timeout=30)
        slaves[name] = s
    ok, lines = console(scn.path("ahead.sock"), "log 50")
    stamps = [line for line in lines if "FULL sync complete" in line]
    say(f"slave 'ahead' logs its own clock: {stamps[-1][:24] if stamps else '?'} (3 h ahead)")

    # 600 transactions, 5 ms apart (about 4 s): with 300 ms of latency the slaves stay ~60 behind.
    writer = scn.spawn([harness.WRITER, "counter", "--data", master.data, "--count", "600", "--pause-ms", "5",
                        "--every", "1"])
    behind_samples = {name: [] for name in slaves}
    peer_samples = []
    deadline = time.monotonic() + 60
    while writer.poll() is None and time.monotonic() < deadline:
        for name in slaves:
            ok, lines = console(scn.path(name + ".sock"), "status")
            check(ok, f"{name}: status failed: {lines}")
            st = fields(lines)
            if st.get("lag_ms", "-") != "-":
                behind_samples[name].append(int(st["lag_ms"]))
        ok, lines = console(msock, "peers")
        check(ok, f"master: peers failed: {lines}")
        for line in lines[1:]:
            cols = line.split()
            if len(cols) >= 5 and cols[3] not in ("-", "0") and cols[4] != "-":
                peer_samples.append(int(cols[4]))
        time.sleep(0.05)
    check(writer.wait(30) == 0, "the writer failed")
    for name, samples in behind_samples.items():
        check(len(samples) >= 10, f"{name} showed lag_ms only {len(samples)} time(s) while linked")
        check(max(samples) < BOUND_MS,
              f"{name} (clock {SKEWS[name]}) showed lag_ms up to {max(samples)}: its wall clock leaks in")
        say(f"{name} (clock {SKEWS[name]}): {len(samples)} samples while the master wrote, lag_ms "
            f"{min(samples)}..{max(samples)}")
    check(len(peer_samples) >= 3, f"the master's peers showed a slave behind it only {len(peer_samples)} time(s)")
    check(max(peer_samples) < BOUND_MS, f"the master's peers showed lag_ms up to {max(peer_samples)}")
    say(f"master peers: {len(peer_samples)} samples of a slave behind, lag_ms {min(peer_samples)}..{max(peer_samples)}")
    relay.set_mode("down", Delay(0.0, 0.0))
    harness.converge(master, list(slaves.values()), timeout=60)


if __name__ == "__main__":
    if not FAKETIME:
        print("SKIP: faketime not installed (tools/setup installs it)", flush=True)
        sys.exit(77)
    if harness.SANITIZED:
        print("SKIP: libfaketime's LD_PRELOAD cannot run beside ASan; build/ runs this test", flush=True)
        sys.exit(77)
    harness.run(main)
