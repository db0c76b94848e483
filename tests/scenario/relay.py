#!/usr/bin/env python3
"""A fault-injecting TCP relay for the scenario tests (asyncio, stdlib only).

It listens on 127.0.0.1 (port from the kernel), and for every accepted link connects to the
target (a master) and forwards both directions. Each direction ("down" = target -> client, i.e.
master -> slave; "up" = client -> target) has a Mode that sees every chunk read from its source,
with the link and the byte offset of that chunk in the link's stream, and decides what to write.
The test switches modes at run time; a mode change applies to the next chunk of every link.

Modes today: PassThrough, and FlipBit (flip bit N of the byte at stream offset K of one link,
once) with FlipEachLink (link i gets the i-th of a list of flips). The Mode interface is a
coroutine so later faults can wait (delay, bandwidth), drop a chunk (blackhole, drop), repeat
one (duplicate) or end the link (reset: feed() returns None).

Use from a test (a thread runs the event loop):
    relay = Relay(("127.0.0.1", master_port)).start()
    relay.set_mode("down", FlipEachLink([(100, 3), (250, 0)]))
    relay.flip_after("down", 40, 1)  # 40 bytes after what the current link has passed so far
    relay.applied                    # [(link, offset, bit, byte before, byte after), ...]
    relay.close()
CLI (for manual runs): relay.py --target HOST:PORT prints "port P", then reads commands on
stdin, one per line: "down pass", "down flip K N", "down flip-after K N", "links", "quit".
Only numeric addresses; the test keeps every listener on 127.0.0.1.
"""

import argparse
import asyncio
import sys
import threading

DIRECTIONS = ("down", "up")


class Link:
    """One relayed connection: its number (accept order, from 0) and the bytes passed per direction."""

    def __init__(self, number):
        self.number = number
        self.passed = {"down": 0, "up": 0}
        self.closed = False


class Mode:
    """A fault on one direction. feed() returns the bytes to forward (b"" forwards nothing), or
    None to reset the link. `offset` is the position of data[0] in this direction of `link`."""

    async def feed(self, relay, link, offset, data):
        raise NotImplementedError

    def on_link(self, link):
        """Called once for every new link (accept order)."""


class PassThrough(Mode):
    async def feed(self, relay, link, offset, data):
        return data


class FlipBit(Mode):
    """Flips bit `bit` (0 = least significant) of the byte at stream offset `at` of link number
    `link` (None: the first link whose stream reaches that offset), once; everything else passes."""

    def __init__(self, at, bit, link=None):
        self.at, self.bit, self.link, self.done = at, bit, link, False

    async def feed(self, relay, link, offset, data):
        if self.done or (self.link is not None and link.number != self.link):
            return data
        if not offset <= self.at < offset + len(data):
            return data
        i = self.at - offset
        before = data[i]
        after = before ^ (1 << self.bit)
        self.done = True
        relay.applied.append((link.number, self.at, self.bit, before, after))
        return data[:i] + bytes([after]) + data[i + 1:]


class FlipEachLink(Mode):
    """Link i (counted from the first link accepted after this mode is set) gets flips[i] =
    (offset, bit); links past the list pass through."""

    def __init__(self, flips):
        self.flips = list(flips)
        self.next = 0
        self.per_link = {}

    def on_link(self, link):
        if self.next < len(self.flips):
            at, bit = self.flips[self.next]
            self.per_link[link.number] = FlipBit(at, bit, link.number)
            self.next += 1

    def remaining(self):
        return len(self.flips) - self.next

    async def feed(self, relay, link, offset, data):
        flip = self.per_link.get(link.number)
        return await flip.feed(relay, link, offset, data) if flip else data


class Relay:
    def __init__(self, target, listen_host="127.0.0.1"):
        self.target = target
        self.listen_host = listen_host
        self.modes = {"down": PassThrough(), "up": PassThrough()}
        self.links = []
        self.applied = []  # (link number, offset, bit, byte before, byte after) of each flip done
        self.port = None
        self.loop = None
        self._server = None
        self._writers = set()
        self._ready = threading.Event()
        self._thread = None

    # --- control (any thread) ---------------------------------------------------------------

    def start(self):
        """Runs the relay's event loop in a daemon thread; returns self once it listens."""
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self.port is None:
            raise RuntimeError("relay did not start listening")
        return self

    def address(self):
        return f"{self.listen_host}:{self.port}"

    def set_mode(self, direction, mode):
        assert direction in DIRECTIONS, direction
        self._call(self._set_mode, direction, mode)

    def flip_after(self, direction, skip, bit):
        """Flips bit `bit` of the byte `skip` bytes past what the newest open link has passed in
        `direction` so far (a byte of the next traffic on that link). Returns the FlipBit."""
        done = threading.Event()
        box = []

        def arm():
            link = next((l for l in reversed(self.links) if not l.closed), None)
            flip = FlipBit((link.passed[direction] if link else 0) + skip, bit, link.number if link else None)
            self._set_mode(direction, flip)
            box.append(flip)
            done.set()

        self.loop.call_soon_threadsafe(arm)
        done.wait(10)
        return box[0] if box else None

    def close(self):
        if self.loop and self.loop.is_running():
            self.loop.call_soon_threadsafe(self._stop)
        if self._thread:
            self._thread.join(10)

    # --- event loop ---------------------------------------------------------------------------

    def _call(self, fn, *args):
        if self.loop is None:
            fn(*args)
        else:
            self.loop.call_soon_threadsafe(fn, *args)

    def _set_mode(self, direction, mode):
        self.modes[direction] = mode

    def _run(self):
        self.loop = asyncio.new_event_loop()
        try:
            self.loop.run_until_complete(self._serve())
        finally:
            self.loop.close()

    async def _serve(self):
        self._server = await asyncio.start_server(self._accept, self.listen_host, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        self._stopped = asyncio.Event()
        self._ready.set()
        await self._stopped.wait()
        self._server.close()
        for w in list(self._writers):
            w.close()
        # End every link's pumps before the loop closes (no task is left pending).
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in others:
            t.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def _stop(self):
        self._stopped.set()

    async def _accept(self, down_reader, down_writer):
        link = Link(len(self.links))
        self.links.append(link)
        for mode in self.modes.values():
            mode.on_link(link)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            down_writer.close()
            link.closed = True
            return
        self._writers.update((down_writer, up_writer))
        await asyncio.gather(self._pump(link, "down", up_reader, down_writer, up_writer),
                             self._pump(link, "up", down_reader, up_writer, down_writer))
        link.closed = True
        self._writers.difference_update((down_writer, up_writer))

    async def _pump(self, link, direction, reader, writer, other):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                offset = link.passed[direction]
                link.passed[direction] += len(data)
                out = await self.modes[direction].feed(self, link, offset, data)
                if out is None:
                    break
                if out:
                    writer.write(out)
                    await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            # Either side gone: end the whole link, as a cable pull would.
            for w in (writer, other):
                try:
                    w.close()
                except OSError:
                    pass


def _cli():
    parser = argparse.ArgumentParser(description="fault-injecting TCP relay (scenario tests)")
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to (numeric)")
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    relay = Relay((host, int(port))).start()
    print(f"port {relay.port}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words == ["quit"]:
            break
        if words == ["links"]:
            print(" ".join(f"{l.number}:{l.passed['down']}/{l.passed['up']}{'' if not l.closed else 'x'}"
                           for l in relay.links), flush=True)
            continue
        if len(words) >= 2 and words[0] in DIRECTIONS:
            if words[1] == "pass":
                relay.set_mode(words[0], PassThrough())
                print("ok", flush=True)
                continue
            if words[1] in ("flip", "flip-after") and len(words) == 4:
                at, bit = int(words[2]), int(words[3])
                if words[1] == "flip":
                    relay.set_mode(words[0], FlipBit(at, bit))
                else:
                    relay.flip_after(words[0], at, bit)
                print("ok", flush=True)
                continue
        print(f"error: unknown command '{line.strip()}'", flush=True)
    relay.close()


if __name__ == "__main__":
    _cli()
