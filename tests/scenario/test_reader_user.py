#!/usr/bin/env python3
"""Issue 15: `possync get` for a user who may only read the data directory, or exactly why not.

A master's directory holds menu/tea = 2.00 while the master runs. Another user (uid 65534, run
through setpriv) may read the directory and data.mdb but not write them:
1. lock.mdb not writable either: get exits 1 and says that lock.mdb is not writable by this user
   and that LMDB readers register in it (so reading needs write access to it), not a bare
   "Permission denied".
2. lock.mdb writable (the packaged setup gives the possync group read-write): get, dump and
   digest work read-only, and put is refused naming data.mdb.
"""

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNC, check, possync, run_tool, say  # noqa: E402

STORE = "store-reader"
SETPRIV = shutil.which("setpriv")
NOBODY = ["--reuid=65534", "--regid=65534", "--clear-groups"]


def as_nobody(data, *args):
    return run_tool([SETPRIV, *NOBODY, POSSYNC, "--data", data, *args], check_rc=False)


def main(scn):
    master = scn.master("master", STORE, ["menu"]).start()
    possync(master.data, "put", "menu", "tea", "2.00")
    os.chmod(scn.root, 0o755)
    os.chmod(master.data, 0o755)
    for name in ("data.mdb", "lock.mdb"):
        os.chmod(os.path.join(master.data, name), 0o644)

    rc, out, err = as_nobody(master.data, "get", "menu", "tea")
    check(rc == 1, f"get without a writable lock.mdb exited {rc}: {out!r} {err!r}")
    check("lock.mdb is not writable by this user (uid 65534)" in err and "readers register in it" in err,
          f"the reason does not name lock.mdb and why: {err.strip()}")
    say(f"lock.mdb read-only: {err.strip()}")

    os.chmod(os.path.join(master.data, "lock.mdb"), 0o666)
    rc, out, err = as_nobody(master.data, "get", "menu", "tea")
    check(rc == 0 and out.strip() == "2.00", f"get as a reader: exit {rc}: {out!r} {err!r}")
    rc, out, err = as_nobody(master.data, "digest")
    check(rc == 0 and out.strip() == harness.digest(master.data), f"digest as a reader: exit {rc}: {out!r} {err!r}")
    rc, out, err = as_nobody(master.data, "dump", "menu")
    check(rc == 0 and "tea" in out, f"dump as a reader: exit {rc}: {out!r} {err!r}")
    rc, out, err = as_nobody(master.data, "put", "menu", "tea", "9.99")
    check(rc == 1 and "data.mdb is not writable by this user" in err, f"put as a reader: exit {rc}: {err!r}")
    check(possync(master.data, "get", "menu", "tea").strip() == "2.00", "the reader's put changed the data")
    master.expect_alive()
    say("with lock.mdb writable, a reader gets, dumps and digests; its put is refused naming data.mdb")


if __name__ == "__main__":
    if os.geteuid() != 0 or not SETPRIV:
        print("SKIP: needs root and setpriv (util-linux) to run the tool as another user", flush=True)
        sys.exit(77)
    harness.run(main)
