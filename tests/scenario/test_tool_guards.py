#!/usr/bin/env python3
"""Issue 9 items 13 and 14: the possync tool on a board's data directory.

Item 13, file permissions: files are created honouring the process umask (the packaged
UMask=0007 gives group read-write, so a POS application in the group can open the data), and a
`possync put` run as root on a data directory owned by another user acts as that user, so the
owner (the daemon's user) can still open every file afterwards.

Item 14, numbers and roles: `possync watch LIST` is refused on a slave's directory (a slave's
watch list is its master's), and `load` refuses negative numbers and zero where zero means
nothing (--records, --batch) with a one-line reason naming the option, writing nothing.
"""

import os
import pwd
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import harness  # noqa: E402
from harness import POSSYNC, check, possync, run_tool, say  # noqa: E402

STORE = "store-tool-guards"
DATA_FILES = ("data.mdb", "lock.mdb", "possync.notify")


def run_as(args, uid=None, gid=None, umask=None, timeout=60):
    """Runs a command with another umask and/or user; returns (rc, stdout, stderr)."""
    def pre():
        if umask is not None:
            os.umask(umask)
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
    try:
        p = subprocess.run(args, capture_output=True, timeout=timeout, preexec_fn=pre)
    except subprocess.TimeoutExpired:
        harness.fail(f"{' '.join(args)} did not finish within {timeout} s")
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check_permissions(scn):
    # The packaged umask: group members get read-write on every file, others nothing.
    data = scn.path("packaged")
    rc, _, err = run_as([POSSYNC, "--data", data, "put", "menu", "burger", "5.50"], umask=0o007)
    check(rc == 0, f"possync put with umask 0007 failed: {err.strip()}")
    modes = {name: stat.S_IMODE(os.stat(os.path.join(data, name)).st_mode) for name in DATA_FILES}
    say("umask 0007: " + ", ".join(f"{n} {m:04o}" for n, m in modes.items()))
    for name, mode in modes.items():
        check(mode == 0o660, f"{name} was created {mode:04o} under umask 0007; the group needs 0660")
    rc, _, err = run_as([POSSYNC, "--data", data, "put", "menu", "fries", "2"], umask=0o077)
    check(rc == 0, f"possync put with umask 0077 failed: {err.strip()}")

    if os.geteuid() != 0:
        # Acting as another user needs root; the umask part above still ran.
        say("not root: the root-on-another-user's-directory part cannot run here")
        return
    owner = pwd.getpwnam("nobody")
    os.chmod(scn.root, 0o711)  # nobody must reach its directory inside the scenario's
    data = scn.path("owned-by-nobody")
    os.mkdir(data, 0o770)
    os.chown(data, owner.pw_uid, owner.pw_gid)
    # Root, with root's usual umask, writes first (e.g. a setup script before the first start).
    rc, _, err = run_as([POSSYNC, "--data", data, "put", "menu", "burger", "5.50"], umask=0o022)
    check(rc == 0, f"possync put as root on nobody's directory failed: {err.strip()}")
    owners = {name: os.stat(os.path.join(data, name)).st_uid for name in DATA_FILES}
    say(f"root's possync put on a directory of uid {owner.pw_uid}: file owners {owners}")
    for name, uid in owners.items():
        check(uid == owner.pw_uid, f"{name} is owned by uid {uid} after root's possync put, not by the "
                                   f"directory's owner {owner.pw_uid}")
    rc, out, err = run_as([POSSYNC, "--data", data, "put", "menu", "fries", "2.10"],
                          uid=owner.pw_uid, gid=owner.pw_gid)
    check(rc == 0, f"the directory's owner cannot write after root's possync put: {err.strip()}")
    rc, out, err = run_as([POSSYNC, "--data", data, "get", "menu", "burger"], uid=owner.pw_uid, gid=owner.pw_gid)
    check(rc == 0 and out.strip() == "5.50", f"the directory's owner cannot read root's write: {err.strip()}")


def check_numbers(scn):
    data = scn.path("load")
    possync(data, "put", "other", "k", "v")
    bad = [
        (["--records", "-5"], "--records"),
        (["--records", "0"], "--records"),
        (["--records", "3", "--start", "-3"], "--start"),
        (["--records", "3", "--batch", "0"], "--batch"),
        (["--records", "3", "--batch", "-1"], "--batch"),
        (["--records", "3", "--value-size", "-1"], "--value-size"),
        (["--records", "3", "--start", "18446744073709551615"], "--start"),
    ]
    for args, option in bad:
        cmd = [POSSYNC, "--data", data, "--map-size", "16", "load", "--value-size", "10", *args]
        if "--value-size" in args:
            cmd = [POSSYNC, "--data", data, "--map-size", "16", "load", *args]
        rc, _, err = run_tool(cmd, timeout=30, check_rc=False)
        lines = [line for line in err.splitlines() if line.strip()]
        say(f"load {' '.join(args)}: exit {rc}: {lines[0] if lines else '(nothing)'}")
        check(rc != 0, f"load {' '.join(args)} was accepted")
        check(len(lines) == 1 and option in lines[0], f"load {' '.join(args)}: no one-line reason naming {option}: "
                                                      f"{err.strip()}")
    out = possync(data, "dump")
    check("bench" not in out, "a refused load wrote records")
    # Progress of a long load on a terminal (stderr a pseudo-terminal): "loading T: N of M records
    # (P%)" lines, then the result; nothing of it when stderr is not a terminal (the run above).
    import pty
    master_fd, slave_fd = pty.openpty()
    p = subprocess.run([POSSYNC, "--data", data, "load", "--records", "200000", "--value-size", "8", "--batch", "1000",
                        "--table", "progress"], stdout=subprocess.PIPE, stderr=slave_fd, timeout=120)
    os.close(slave_fd)
    shown = b""
    while True:
        try:
            chunk = os.read(master_fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(master_fd)
    check(p.returncode == 0 and b"loaded 200000 records" in p.stdout, f"load on a terminal: {p.returncode} {p.stdout!r}")
    check(b"loading progress: 200000 of 200000 records (100%)" in shown, f"no progress on the terminal: {shown[-200:]!r}")
    say(f"load on a terminal showed progress: {shown.count(b'loading progress:')} update(s)")

    # Exit codes: a value that is no number is bad usage (2); a number out of range is a checked
    # bad value (1).
    for args, want in ((["--records", "abc"], 2), (["--records", "-5"], 2), (["--records", "0"], 1),
                       (["--records", "99999999999999999999999"], 1), (["--records", "3", "--batch", "0"], 1)):
        rc, _, err = run_tool([POSSYNC, "--data", data, "load", "--value-size", "1", *args], check_rc=False)
        check(rc == want, f"load {' '.join(args)} exited {rc}, not {want}: {err.strip()}")
    # Help per command, whatever else is missing on the line; unknown commands named as such.
    for args in (["put", "--help"], ["--data", data, "put", "-h"], ["help", "put"]):
        rc, out, err = run_tool([POSSYNC, *args], check_rc=False)
        check(rc == 0 and out.startswith("usage: possync --data DIR put TABLE KEY "),
              f"possync {' '.join(args)}: exit {rc}: {out!r} {err!r}")
    # Every command answers --help with its usage (console answered "unknown option --help").
    for command in ("put", "add", "del", "get", "dump", "digest", "load", "watch", "info", "outbox", "key",
                    "console"):
        rc, out, err = run_tool([POSSYNC, command, "--help"], check_rc=False)
        check(rc == 0 and out.startswith(f"usage: possync ") and f" {command} " in out.splitlines()[0] + " ",
              f"possync {command} --help: exit {rc}: {out!r} {err!r}")
    rc, out, _ = run_tool([POSSYNC, "help"], check_rc=False)
    check(rc == 0 and "usage:" in out and "possync --data DIR get TABLE KEY" in out, f"possync help: {rc}")
    for args in (["frobnicate"], ["--data", data, "frobnicate", "x"], ["help", "frobnicate"]):
        rc, _, err = run_tool([POSSYNC, *args], check_rc=False)
        check(rc == 2 and "unknown command 'frobnicate'" in err, f"possync {' '.join(args)}: exit {rc}: {err!r}")
    rc, _, err = run_tool([POSSYNC, "--data", data, "--map-size", "-1", "info"], check_rc=False)
    check(rc != 0 and "--map-size" in err, f"--map-size -1 was accepted: {err.strip()}")
    # The checks do not refuse good numbers.
    rc, out, err = run_tool([POSSYNC, "--data", data, "load", "--records", "5", "--value-size", "0", "--start", "3",
                             "--batch", "2"], check_rc=False)
    check(rc == 0, f"a valid load failed: {err.strip()}")


def check_slave_watch(scn):
    master = scn.master("master", STORE, ["menu", "stock"]).start()
    slave = scn.slave("slave", STORE, master).start()
    slave.wait_log(r"FULL sync complete")
    slave.stop()
    rc, _, err = run_tool([POSSYNC, "--data", slave.data, "watch", "menu"], check_rc=False)
    say(f"possync watch menu on the slave's directory: exit {rc}: {err.strip()}")
    check(rc != 0, "possync watch LIST was accepted on a slave's directory")
    check("slave" in err, f"the refusal does not say the directory is a slave's: {err.strip()}")
    check(harness.watched(slave.data) == ["menu", "stock"], "the slave's watch list changed")
    check(possync(slave.data, "watch").strip() == "menu,stock", "possync watch (show) on a slave")
    master.stop()


def main(scn):
    check_permissions(scn)
    check_numbers(scn)
    check_slave_watch(scn)


if __name__ == "__main__":
    harness.run(main)
