#!/usr/bin/env python3
"""Issue 15: SIGHUP reads the configuration again instead of killing the daemon.

A master runs with --config FILE (log_level = "info", window = 64) and a slave streams from it.
SIGHUP with the file unchanged: the master stays up and logs that nothing changed. Then the file
says log_level = "debug" and window = 16: SIGHUP applies the log level at once (debug lines
appear) and logs that --window waits for a restart. Then the file is
broken (not TOML): SIGHUP logs why it does not load and changes nothing. The command line still
wins over the file on a reload (the harness gives --timeout-ms on it: the file's is not reported). Through all
of it the slave's link stays up, and SIGTERM still stops the master with exit 0.
"""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import check, possync, say  # noqa: E402

STORE = "store-sighup"
TABLES = ["menu"]


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)


def main(scn):
    conf = scn.path("possyncd.toml")
    write_config(conf, 'log_level = "info"\nwindow = 64\n')
    master = scn.master("master", STORE, TABLES, args=["--config", conf]).start()
    slave = scn.slave("slave", STORE, master).start()
    slave.wait_log(r"FULL sync complete")
    smark = slave.mark()

    mark = master.mark()
    master.proc.send_signal(signal.SIGHUP)
    master.wait_log(r"SIGHUP: configuration read again; nothing changed", since=mark)
    master.expect_alive()

    write_config(conf, 'log_level = "debug"\nwindow = 16\ntimeout_ms = 9000\n')
    mark = master.mark()
    master.proc.send_signal(signal.SIGHUP)
    master.wait_log(r"SIGHUP: log level info -> debug", since=mark)
    master.wait_log(r"SIGHUP: --window changed in the configuration: takes effect at the next restart", since=mark)
    check(master.count(r"--timeout-ms changed", since=mark) == 0,
          "the file's timeout_ms was reported although the command line sets --timeout-ms")
    # A slave's new link walks a session through its states, which the master logs at debug.
    slave.stop()
    slave.start()
    master.wait_log(r" debug Sync: session \d+: ", since=mark, timeout=20)
    smark = slave.mark()
    possync(master.data, "put", "menu", "tea", "2.00")
    say("SIGHUP applied log_level = debug at once; window waits for a restart")

    write_config(conf, 'log_level = "debug\nthis is not toml\n')
    mark = master.mark()
    master.proc.send_signal(signal.SIGHUP)
    master.wait_log(r"SIGHUP: the configuration does not load, nothing changed: ", since=mark)
    master.expect_alive()
    harness.converge(master, [slave])
    check(slave.count(r"link to master", since=smark) == 0, "the slave's link dropped during the reloads")
    master.stop()
    say("a broken file on SIGHUP is reported and changes nothing; SIGTERM still exits 0")


if __name__ == "__main__":
    harness.run(main)
