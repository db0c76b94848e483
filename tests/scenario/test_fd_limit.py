#!/usr/bin/env python3
"""Issue 10: possyncd raises its soft RLIMIT_NOFILE to the hard limit at start.

A master started with a soft limit of 64 descriptors (hard limit unchanged) must run with
soft == hard (read from /proc/PID/limits) and say so in its log at info level. Before the
fix it kept 64: a master near that limit could not accept a genuine slave.
"""

import os
import resource
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, say  # noqa: E402

STORE = "store-fd-limit"
SOFT = 64


def open_files_limit(pid):
    """(soft, hard) of `Max open files` in /proc/PID/limits, as text."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                fields = line.split()
                return fields[3], fields[4]
    harness.fail(f"no 'Max open files' line in /proc/{pid}/limits")
    return None


def main(scn):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    check(hard == resource.RLIM_INFINITY or hard > SOFT,
          f"the hard open file limit ({hard}) leaves no room to test below it")
    # The daemon inherits a soft limit of 64; the test's own limit is restored at once.
    resource.setrlimit(resource.RLIMIT_NOFILE, (SOFT, hard))
    try:
        master = scn.master("master", STORE, ["menu"]).start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    got_soft, got_hard = open_files_limit(master.proc.pid)
    say(f"started with soft {SOFT}, hard {hard}: the daemon runs with soft {got_soft}, hard {got_hard}")
    check(got_soft == got_hard, f"the daemon's soft open file limit is {got_soft}, not its hard limit {got_hard}")
    master.wait_log(rf"info Daemon: open file limit raised from {SOFT} to {got_hard}")
    master.expect_alive()
    master.stop()


if __name__ == "__main__":
    harness.run(main)
