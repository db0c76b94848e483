"""The serial console on a real pseudo-terminal, driven as a technician would.

A master (menu, orders) and slaves whose console is `possyncd --serial <pty>`. Sections, each
on a fresh slave and terminal so one broken section cannot hide the others:
  commands   every command once, backspace/DEL editing, CR/LF/CRLF, Ctrl-C, history, cursor
             keys, tab completion,
             unknown commands, bad arguments, a 2,000-byte line, binary bytes, half a
             command and a long pause: one error line each, and the console keeps working;
  ctrl-d     Ctrl-D on an empty line (Terminal mode: "Ctrl-D does nothing");
  random     4 KiB of random bytes, then the console must still answer;
  hammer     random garbage on the console while the master writes: every write reaches
             the slave during the flood, the link never drops, then the console answers.
"""

import random
import subprocess
import time

from consolelib import (POSSYNCD, Failure, Harness, PROMPT, Terminal, check, digest, main, parse_kv,
                        parse_table, put, wait_until)

COMMANDS = ["help", "version", "status", "peers", "tables", "get", "scan", "stats", "log",
            "loglevel", "resync", "accept-generation", "discovery", "outbox", "clients",
            "promote", "rejoin", "pair"]


def start_console_slave(h, master, name):
    term = Terminal(h)
    slave = h.slave(name, name, master.port, ["--serial", term.path])
    term.wait_banner(slave)
    wait_until(lambda: term.status(slave)["link"] == "streaming", 15, name + " streaming")
    return term, slave


def converged(master, slave):
    m, s = digest(master.data), digest(slave.data)
    return m == s and m


def section_commands(h, master):
    term, slave = start_console_slave(h, master, "tech")
    wait_until(lambda: converged(master, slave), 15, "tech to converge")

    # help: one line per command, in the documented set.
    lines = term.run("help", slave)
    check([line.split()[0] for line in lines] == COMMANDS, "help lists %r" % lines)
    check(parse_kv(term.run("help get", slave)) == {
        "usage": "get TABLE KEY", "about": "the value under KEY (KEY as text or 0x-hex)"},
        "help get")
    v = parse_kv(term.run("version", slave))
    # The same numbers as `possyncd --version` ("possyncd V (protocol P, format F)").
    want = subprocess.run([POSSYNCD, "--version"], capture_output=True, text=True, check=True).stdout
    check("possyncd %s (protocol %s, format %s)" % (v["version"], v["protocol"], v["format"]) == want.strip(),
          "version %r, possyncd --version says %r" % (v, want))

    st = term.status(slave)
    mine = digest(slave.data)
    check(st["role"] == "slave" and st["store"] == "console-store", "status %r" % st)
    check(st["generation"] == mine["generation"] and int(st["position"]) == mine["seq"],
          "status %r vs digest %r" % (st, mine))
    check(st["waiting"] == "-" and st["discovery"] == "static", "status %r" % st)

    peers = parse_table(term.run("peers", slave))
    check(len(peers) == 1 and peers[0]["address"] == "127.0.0.1:%d" % master.port and
          peers[0]["state"] == "streaming" and peers[0]["found_via"] == "static", "peers %r" % peers)

    tables = {r["name"]: r for r in parse_table(term.run("tables", slave))}
    check(tables["menu"]["entries"] == "3" and tables["menu"]["watched"] == "yes" and
          tables["orders"]["entries"] == "1", "tables %r" % tables)

    check(parse_kv(term.run("get menu coffee", slave)) ==
          {"table": "menu", "key": "coffee", "value": "espresso doppio"}, "get menu coffee")
    check(parse_kv(term.run("get menu 0x636f66666565", slave))["value"] == "espresso doppio",
          "get with a 0x-hex key")
    check(term.error("get menu tea", slave) == "no key tea in table menu", "get of a missing key")

    lines = term.run("scan menu c 1", slave)
    check(parse_kv(lines[:3]) == {"table": "menu", "rows": "1", "more": "yes"} and
          parse_table(lines[3:]) == [{"key": "cake", "value": "cheese"}], "scan menu c 1: %r" % lines)
    lines = term.run("scan menu", slave)
    check(parse_kv(lines[:3])["rows"] == "3" and len(lines) == 3 + 1 + 3, "scan menu: %r" % lines)

    stats = term.stats(slave)
    for name in ("frames_in", "frames_out", "full_syncs", "reconnects", "connects"):
        check(name in stats, "stats has no %s: %r" % (name, stats))
    check(stats["full_syncs"] == 1 and stats["connects"] == 1, "stats %r" % stats)
    # The serial console's own counters, the dropped output the README promises among them.
    for name in ("serial_bytes_in", "serial_bytes_out", "serial_dropped_bytes", "serial_hangups"):
        check(name in stats, "stats has no %s: %r" % (name, stats))
    check(int(stats["serial_bytes_in"]) > 0 and int(stats["serial_bytes_out"]) > 0, "serial counters %r" % stats)

    lines = term.run("log 3", slave)
    check(len(lines) == 3 and all(" info " in l or " warning " in l or " debug " in l
                                  for l in lines), "log 3: %r" % lines)
    rows = parse_table(term.run("loglevel", slave))
    levels = {r["category"]: r["level"] for r in rows}
    # Every category of the daemon, also those that have not logged yet (Avahi, Discovery and Uv
    # stay silent on this static slave), each once.
    check({"Avahi", "Console", "Daemon", "Discovery", "Store", "Sync", "Uv"} <= set(levels), "loglevel %r" % levels)
    check(len(rows) == len(levels), "a category is listed twice: %r" % [r["category"] for r in rows])
    check(parse_table(term.run("loglevel sync debug", slave)) ==
          [{"category": "Sync", "level": "debug"}], "loglevel sync debug")
    check(parse_table(term.run("loglevel Sync info", slave)) ==
          [{"category": "Sync", "level": "info"}], "loglevel Sync info")

    check(term.run("resync", slave) == ["resync: full sync requested"], "resync")
    wait_until(lambda: term.stats(slave)["full_syncs"] == 2, 15, "the FULL sync after resync")
    wait_until(lambda: term.status(slave)["link"] == "streaming", 15, "streaming after resync")
    check(converged(master, slave), "same data after resync")
    reason = term.error("accept-generation", slave)
    check("not waiting" in reason, "accept-generation when not waiting: %r" % reason)
    disc = term.run("discovery", slave)
    check(parse_kv(disc[:1])["entries"] == str(len(disc) - 1) and
          any("127.0.0.1:%d" % master.port in l for l in disc), "discovery %r" % disc)

    # issue 12: nothing written on this slave, so an empty outbox and no writing boards.
    box = parse_kv(term.run("outbox", slave))
    check(box["count"] == "0" and box["oldest_request"] == "-" and box["next_request"] == "1" and
          int(box["limit"]) > 0 and box["last_rejection"] == "-", "outbox %r" % box)
    lines = term.run("clients", slave)
    check(parse_kv(lines[:1]) == {"clients": "0"} and parse_table(lines[1:]) == [], "clients %r" % lines)

    # Editing: backspace and DEL erase; the echo shows it.
    term.write(b"statux\x08s\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(out.startswith(b"statux\x08 \x08s\r\nrole: slave\r\n"), "backspace edit: %r" % out[:80])
    term.write(b"versiom\x7fn\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(out.startswith(b"versiom\x08 \x08n\r\nversion: "), "DEL edit: %r" % out[:80])
    # Backspace on an empty line does nothing (no echo).
    term.write(b"\x08\x08version\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(out.startswith(b"version\r\nversion: "), "backspace on an empty line: %r" % out[:80])

    # Line ends: CR, LF and CRLF each end exactly one line (also CRLF split across writes).
    for eol in (b"\r", b"\n", b"\r\n"):
        ok, lines = term.command("version", eol=eol, daemon=slave)
        check(ok and lines[0].startswith("version: "), "version with %r" % eol)
        term.expect_silence(0.3, "one answer for version%r" % eol)
    term.write(b"version\r")
    term.read_until(PROMPT, daemon=slave)
    time.sleep(0.3)
    term.write(b"\n")
    term.expect_silence(0.3, "the LF of a CRLF split across writes is swallowed")
    # A blank line answers nothing but a prompt.
    term.write(b"\r")
    check(term.read_until(PROMPT, daemon=slave) == b"\r\n" + PROMPT, "blank line")

    # Ctrl-C drops the half line; Up recalls the last line and Down the (empty) line being
    # typed, each redrawn; a function key (F1) is swallowed whole.
    term.write(b"statu\x03")
    check(term.read_until(PROMPT, daemon=slave) == b"statu^C\r\n" + PROMPT, "Ctrl-C")
    check(term.run("version", slave)[0].startswith("version: "), "version after Ctrl-C")
    term.write(b"\x1b[A\x1b[B\x1bOPversion\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(out.startswith(b"version" + b"\b" * 7 + b" " * 7 + b"\b" * 7 + b"version\r\nversion: "),
          "arrow keys: %r" % out[:80])
    # Left, an insertion in the middle, Ctrl-A/Ctrl-E, and tab completing a command name.
    term.write(b"vrsion\x1b[D\x1b[D\x1b[D\x1b[D\x1b[De\x05\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(b"\r\nversion: " in out, "editing in the middle: %r" % out[:120])
    term.write(b"vers\t\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(out.startswith(b"version \r\nversion: "), "tab completion: %r" % out[:80])

    # Wrong input: one error line each, and the console goes on.
    check(term.error("frobnicate", slave) == "unknown command 'frobnicate' (try help)", "unknown")
    check(term.error("STATUS now", slave) == "usage: status", "extra argument")
    check(term.error("get menu", slave) == "usage: get TABLE KEY", "missing argument")
    check(term.error('get menu "coffee', slave) == "unterminated quote", "bad quoting")
    check("LIMIT must be a number" in term.error("scan menu c 0", slave), "bad LIMIT")
    check("bad hex" in term.error("get menu 0xZZ", slave), "bad hex")
    check("unknown log level" in term.error("loglevel Sync loud", slave), "bad level")
    check(term.error("help nothing", slave) == "unknown command 'nothing' (try help)", "help x")

    long_line = ("status " * 300)[:2000].encode()
    term.write(long_line + b"\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(out == long_line[:512] + b"\r\nerror: line too long (more than 512 bytes), ignored\r\n" +
          PROMPT, "2,000-byte line: %r" % out[-120:])

    term.write(b"get menu \x00\xff\xfecoffee\r")
    out = term.read_until(PROMPT, daemon=slave)
    check(out == b"get menu coffee\r\nerror: line contains bytes that are not text, ignored "
          b"(type binary keys as 0x-hex)\r\n" + PROMPT, "binary bytes: %r" % out)

    # Half a command, a long pause: nothing happens; the rest on a new line: two errors.
    term.write(b"sta")
    check(term.read_until(b"sta", daemon=slave) == b"sta", "echo of a half command")
    term.expect_silence(2.0, "nothing while a half command waits")
    term.write(b"\r")
    check(term.read_until(PROMPT, daemon=slave) ==
          b"\r\nerror: unknown command 'sta' (try help)\r\n" + PROMPT, "the half command alone")
    check(term.error("tus", slave) == "unknown command 'tus' (try help)", "the rest alone")
    # ... and a half command finished after the pause on the same line runs.
    term.write(b"sta")
    term.read_until(b"sta", daemon=slave)
    term.expect_silence(1.0, "nothing while a half command waits")
    ok, lines = term.command("tus", daemon=slave)
    check(ok and parse_kv(lines)["role"] == "slave", "status typed across a pause: %r" % lines)

    st = term.status(slave)
    check(st["link"] == "streaming", "still streaming after the garbage: %r" % st)


def section_ctrl_d(h, master):
    term, slave = start_console_slave(h, master, "ctrld")
    term.write(b"\x04")
    term.expect_silence(0.3, "no answer to Ctrl-D on an empty line")
    term.write(b"version\r")
    try:
        out = term.read_until(PROMPT, timeout=3, daemon=slave)
    except Failure:
        raise Failure("after Ctrl-D on an empty line the serial console is deaf: typed "
                      "b'\\x04' then b'version\\r', got %r (expected the version answer)"
                      % term.buf)
    check(out.startswith(b"version\r\nversion: "), "version after Ctrl-D: %r" % out)


def recover(term, slave, what):
    """After garbage: Ctrl-C twice (the first may end an escape sequence), then `version`."""
    term.write(b"\x03\x03")
    term.drain(quiet=0.3)
    term.write(b"version\r")
    try:
        out = term.read_until(PROMPT, timeout=5, daemon=slave)
    except Failure:
        raise Failure("after %s the console does not answer: typed Ctrl-C Ctrl-C "
                      "b'version\\r', got %r" % (what, term.buf[-300:]))
    check(out.startswith(b"version\r\nversion: "), "version after %s: %r" % (what, out[-200:]))


def section_random(h, master):
    term, slave = start_console_slave(h, master, "noise")
    rng = random.Random(4096)
    noise = bytes(rng.getrandbits(8) for _ in range(4096))
    term.write(noise)
    out = term.drain(quiet=0.5)
    check(b"\r\nerror: " in out, "4 KiB of noise gave no error line: %r" % out[-300:])
    slave.assert_alive()
    recover(term, slave, "4 KiB of random bytes (seed 4096, %d Ctrl-D bytes)" % noise.count(4))
    check(term.status(slave)["link"] == "streaming", "streaming after the noise")


def section_hammer(h, master):
    term, slave = start_console_slave(h, master, "hammer")
    before = term.stats(slave)
    rng = random.Random(77)
    sent = 0

    def flood(n=512):
        # About 100 KB/s: several times what a 115200-baud line can carry.
        nonlocal sent
        term.write(bytes(rng.getrandbits(8) for _ in range(n)))
        term.drain(quiet=0.005, timeout=0.05)
        sent += n

    for i in range(20):
        flood()
        put(master.data, "orders", "hammer-%02d" % i, "order %d" % i)
        written = time.monotonic()
        # Garbage keeps coming for at least 150 ms after each write, and until it arrived.
        while time.monotonic() - written < 0.15 or not converged(master, slave):
            check(time.monotonic() - written < 15,
                  "write %d did not reach the slave within 15 s of console garbage" % i)
            flood()
    slave.assert_alive()
    recover(term, slave, "%d bytes of garbage during sync" % sent)
    after = term.stats(slave)
    check(after["reconnects"] == before["reconnects"],
          "the link dropped while the console was flooded: %r -> %r" % (before, after))


def test():
    with Harness("console-pty") as h:
        master = h.master("master", "master")
        put(master.data, "menu", "coffee", "espresso doppio")
        put(master.data, "menu", "cake", "cheese")
        put(master.data, "menu", "cookie", "oat")
        put(master.data, "orders", "0001", "coffee x2")
        failures = []
        for name, section in (("commands", section_commands), ("ctrl-d", section_ctrl_d),
                              ("random", section_random), ("hammer", section_hammer)):
            started = time.monotonic()
            try:
                section(h, master)
                print("section %s: ok (%.1f s)" % (name, time.monotonic() - started))
            except Failure as e:
                print("section %s: FAIL: %s" % (name, e))
                failures.append("%s: %s" % (name, e))
            master.assert_alive()
        if failures:
            raise Failure("%d section(s) failed:\n  %s" % (len(failures), "\n  ".join(failures)))


if __name__ == "__main__":
    main(test)
