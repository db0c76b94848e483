#!/usr/bin/env python3
"""A fault-injecting TCP relay for the scenario tests (asyncio, stdlib only).

It listens on 127.0.0.1 (port from the kernel), and for every accepted link connects to the
target (a master) and forwards both directions. Each direction ("down" = target -> client, i.e.
master -> slave; "up" = client -> target) has a Mode that sees every chunk read from its source,
with the link and the byte offset of that chunk in the link's stream, and decides what to write.
The test switches modes at run time; a mode change applies to the next chunk of every link.

Modes (issue 11, "Network faults"): PassThrough; FlipBit (flip bit N of the byte at stream
offset K of one link, once) with FlipEachLink (link i gets the i-th of a list of flips); Delay
(latency with jitter, order kept); Bandwidth (a rate cap); Slice (1-byte TCP segments);
Blackhole (half-open: bytes read and thrown away, both sockets stay open, no FIN, no RST);
Stall (half-open the other way: the relay stops reading, so the sender's buffers fill);
Reset (every link that carries a byte is ended with an RST); Corrupt (one byte replaced);
DuplicateRange / DropRange (a range of the stream sent twice / never). feed() returns the
bytes to write (b"" writes nothing), a list of bytes (written as separate segments, TCP_NODELAY),
or None (reset the link with an RST). A Mode may also delay its bytes without blocking the
reader: the pump asks mode.hold() (seconds) per chunk and a writer task sends each chunk when
its time has come, never before the one in front of it (order is kept).

Use from a test (a thread runs the event loop):
    relay = Relay(("127.0.0.1", master_port)).start()
    relay.set_mode("down", FlipEachLink([(100, 3), (250, 0)]))
    relay.flip_after("down", 40, 1)  # 40 bytes after what the current link has passed so far
    relay.applied                    # [(link, offset, bit, byte before, byte after), ...]
    relay.set_mode("down", Delay(0.2, 0.05)); relay.set_both(Blackhole()); relay.reset_links()
    relay.arm_after("down", 30, lambda at, n: DropRange(at, 100, n))  # a range of the next bytes
    relay.close()
CLI (for manual runs): relay.py --target HOST:PORT prints "port P", then reads commands on
stdin, one per line: "down pass", "down flip K N", "down flip-after K N", "down delay MS JITTER",
"down rate BITS_PER_S", "down slice", "down blackhole", "down stall", "down reset",
"down corrupt-after K", "down dup-after K LEN", "down drop-after K LEN" (likewise "up ..."),
"reset-links", "links", "quit".
Only numeric addresses; the test keeps every listener on 127.0.0.1.
"""

import argparse
import asyncio
import random
import socket
import struct
import sys
import threading
import time

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

    def hold(self):
        """Seconds the next chunk waits in the link's send queue (0: none). Order is kept."""
        return 0.0


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


class Delay(PassThrough):
    """Latency `mean` +- `jitter` seconds (uniform) on every chunk; chunks never overtake each
    other (a chunk whose draw is shorter waits for the one in front), as on one TCP path."""

    def __init__(self, mean, jitter=0.0, seed=1):
        self.mean, self.jitter, self.rng = mean, jitter, random.Random(seed)

    def hold(self):
        return max(0.0, self.mean + self.rng.uniform(-self.jitter, self.jitter))


class Bandwidth(Mode):
    """A rate cap of `bits_per_s`: the reader waits for each chunk's time on the wire, so the
    sender is held back by TCP flow control, as behind a slow bridge. Chunks are cut to `mtu`."""

    def __init__(self, bits_per_s, mtu=1460):
        self.bits_per_s, self.mtu = bits_per_s, mtu

    async def feed(self, relay, link, offset, data):
        await asyncio.sleep(len(data) * 8 / self.bits_per_s)
        return [data[i:i + self.mtu] for i in range(0, len(data), self.mtu)]


class Slice(Mode):
    """Every byte its own TCP segment (the relay's sockets have TCP_NODELAY): the receiver's
    decoder sees a frame header and payload arrive one byte per read."""

    async def feed(self, relay, link, offset, data):
        return [data[i:i + 1] for i in range(len(data))]


class Blackhole(Mode):
    """Half-open link: everything is read and thrown away, both sockets stay open (no FIN, no
    RST). The sender's kernel sees its bytes acknowledged; only silence tells the peers."""

    async def feed(self, relay, link, offset, data):
        relay.discarded += len(data)
        return b""


class Stall(Mode):
    """Half-open link, the other kind: the relay stops reading this direction (the sender's socket
    buffers fill, then its writes would block) until this mode is replaced on both directions.
    The chunk read when the stall began is forwarded after it."""

    async def feed(self, relay, link, offset, data):
        while any(m is self for m in relay.modes.values()):
            await asyncio.sleep(0.05)
        return data


class Reset(Mode):
    """Every link that carries a byte in this direction is reset (RST) at once: a cable pull
    seen by a switch, or a NAT/bridge that forgot the flow. New links are reset as they speak."""

    async def feed(self, relay, link, offset, data):
        return None


class _AtOffset(Mode):
    """Base of the one-shot faults at stream offset `at` of link number `link`."""

    def __init__(self, at, link=None):
        self.at, self.link, self.done = at, link, False

    def _mine(self, link, offset, data, end=None):
        if self.done or (self.link is not None and link.number != self.link):
            return False
        return offset + len(data) > self.at if end is None else offset <= self.at < offset + len(data)


class Corrupt(_AtOffset):
    """Replaces the byte at stream offset `at` by itself XOR `xor` (never the same byte), once."""

    def __init__(self, at, link=None, xor=0x5A):
        super().__init__(at, link)
        self.xor = xor or 1

    async def feed(self, relay, link, offset, data):
        if not self._mine(link, offset, data, end=True):
            return data
        i = self.at - offset
        self.done = True
        relay.applied.append((link.number, self.at, "corrupt", data[i], data[i] ^ self.xor))
        return data[:i] + bytes([data[i] ^ self.xor]) + data[i + 1:]


class DuplicateRange(_AtOffset):
    """Sends the `length` bytes from stream offset `at` twice (a retransmission a broken bridge
    delivers as new data), once. The range is taken from the chunks as they pass."""

    def __init__(self, at, length, link=None):
        super().__init__(at, link)
        self.length, self.copy = length, b""

    async def feed(self, relay, link, offset, data):
        if not self._mine(link, offset, data):
            return data
        lo = max(self.at, offset) - offset
        hi = min(self.at + self.length, offset + len(data)) - offset
        self.copy += data[lo:hi]
        if len(self.copy) < self.length and offset + len(data) < self.at + self.length:
            return data  # the range goes on in the next chunk
        self.done = True
        relay.applied.append((link.number, self.at, "duplicate", self.length, None))
        return data[:hi] + self.copy + data[hi:]


class DropRange(_AtOffset):
    """Never sends the `length` bytes from stream offset `at` (lost in a bridge), once."""

    def __init__(self, at, length, link=None):
        super().__init__(at, link)
        self.length = length

    async def feed(self, relay, link, offset, data):
        if not self._mine(link, offset, data):
            return data
        lo = max(self.at, offset) - offset
        hi = min(self.at + self.length, offset + len(data)) - offset
        if offset + len(data) >= self.at + self.length:
            self.done = True
            relay.applied.append((link.number, self.at, "drop", self.length, None))
        return data[:lo] + data[hi:]


class Relay:
    def __init__(self, target, listen_host="127.0.0.1"):
        self.target = target
        self.listen_host = listen_host
        self.modes = {"down": PassThrough(), "up": PassThrough()}
        self.links = []
        self.applied = []  # (link number, offset, bit, byte before, byte after) of each flip done
        self.discarded = 0  # bytes a Blackhole threw away
        self.resets = 0  # links ended with an RST
        self._sockets = {}  # link number -> (client socket, target socket)
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

    def set_both(self, mode):
        """The same mode on both directions (a fault of the whole link)."""
        self._call(self._set_mode, "down", mode)
        self._call(self._set_mode, "up", mode)

    def pass_all(self):
        self.set_both(PassThrough())

    def reset_links(self):
        """Ends every open link now with an RST on both sockets (an idle link too)."""
        done = threading.Event()

        def reset():
            for number in list(self._sockets):
                self._rst(number)
            done.set()

        self.loop.call_soon_threadsafe(reset)
        done.wait(10)

    def open_links(self):
        return [l for l in self.links if not l.closed]

    def arm_after(self, direction, skip, make):
        """Sets make(at, link number) as the mode of `direction`, where `at` is `skip` bytes past
        what the newest open link has passed so far (a byte of the next traffic on that link).
        Returns the mode (its .done turns true once it has acted)."""
        done = threading.Event()
        box = []

        def arm():
            link = next((l for l in reversed(self.links) if not l.closed), None)
            mode = make((link.passed[direction] if link else 0) + skip, link.number if link else None)
            self._set_mode(direction, mode)
            box.append(mode)
            done.set()

        self.loop.call_soon_threadsafe(arm)
        done.wait(10)
        return box[0] if box else None

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
        client, target = down_writer.get_extra_info("socket"), up_writer.get_extra_info("socket")
        for sock in (client, target):
            # Slice's 1-byte writes must leave as 1-byte segments, not be coalesced by Nagle.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sockets[link.number] = (client, target, down_writer, up_writer)
        self._writers.update((down_writer, up_writer))
        try:
            await asyncio.gather(self._pump(link, "down", up_reader, down_writer, up_writer),
                                 self._pump(link, "up", down_reader, up_writer, down_writer))
        except asyncio.CancelledError:
            pass  # the relay is closing; asyncio's accept callback must not see a cancelled task
        link.closed = True
        self._sockets.pop(link.number, None)
        self._writers.difference_update((down_writer, up_writer))

    def _rst(self, number):
        """Ends link `number` with an RST on both sockets (SO_LINGER 0, then close)."""
        entry = self._sockets.pop(number, None)
        if not entry:
            return
        self.resets += 1
        for sock, writer in ((entry[0], entry[2]), (entry[1], entry[3])):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
            writer.transport.abort()  # close now, without flushing: with linger 0 the kernel sends RST

    async def _pump(self, link, direction, reader, writer, other):
        # The reader hands chunks (with the time each may leave) to a sender task, so a Delay
        # holds bytes without holding the reader, and order is kept.
        queue = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(queue, writer))
        reset = False
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                offset = link.passed[direction]
                link.passed[direction] += len(data)
                mode = self.modes[direction]
                out = await mode.feed(self, link, offset, data)
                if out is None:
                    reset = True
                    break
                segments = out if isinstance(out, list) else [out]
                due = time.monotonic() + mode.hold()
                for seg in segments:
                    if seg:
                        queue.put_nowait((due, seg))
                if sender.done():
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            if reset:
                sender.cancel()
                self._rst(link.number)
            else:
                queue.put_nowait(None)  # send what is queued, then end
                try:
                    await sender
                except (OSError, asyncio.CancelledError):
                    pass
            # Either side gone: end the whole link, as a cable pull would.
            for w in (writer, other):
                try:
                    w.close()
                except OSError:
                    pass

    @staticmethod
    async def _send(queue, writer):
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                due, seg = item
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(seg)
                await writer.drain()
        except (OSError, ConnectionError):
            return


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
        if words == ["reset-links"]:
            relay.reset_links()
            print("ok", flush=True)
            continue
        if words == ["links"]:
            print(" ".join(f"{l.number}:{l.passed['down']}/{l.passed['up']}{'' if not l.closed else 'x'}"
                           for l in relay.links), flush=True)
            continue
        if len(words) >= 2 and words[0] in DIRECTIONS:
            if words[1] == "pass":
                relay.set_mode(words[0], PassThrough())
                print("ok", flush=True)
                continue
            simple = {"slice": Slice, "blackhole": Blackhole, "stall": Stall, "reset": Reset}
            if words[1] in simple and len(words) == 2:
                relay.set_mode(words[0], simple[words[1]]())
                print("ok", flush=True)
                continue
            if words[1] == "delay" and len(words) == 4:
                relay.set_mode(words[0], Delay(int(words[2]) / 1000, int(words[3]) / 1000))
                print("ok", flush=True)
                continue
            if words[1] == "rate" and len(words) == 3:
                relay.set_mode(words[0], Bandwidth(int(words[2])))
                print("ok", flush=True)
                continue
            if words[1] == "corrupt-after" and len(words) == 3:
                relay.arm_after(words[0], int(words[2]), lambda at, n: Corrupt(at, n))
                print("ok", flush=True)
                continue
            if words[1] in ("dup-after", "drop-after") and len(words) == 4:
                kind = DuplicateRange if words[1] == "dup-after" else DropRange
                skip, length = int(words[2]), int(words[3])
                relay.arm_after(words[0], skip, lambda at, n: kind(at, length, n))
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
