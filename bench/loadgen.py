"""The load client: picows on uvloop, independent of the server code (it never imports service).

Modes (first argument):
  echo       closed loop: every connection sends one message and the next when the echo is back
  tcp        the same over raw TCP, unframed, for the TCP echo floor
  idle       open N connections, answer pings, hold until told to stop (W3 idle memory)
  broadcast  one sender, R receivers in a room; a message is done when every receiver has it
  open       open loop: --rate messages per second on a fixed schedule over all connections,
             each latency counted from the message's scheduled send time (as `wsrelay bench
             --rate` does), so a slow server cannot hide by slowing the client down

Protocol with the harness: the client prints `MEASURE_START` and `MEASURE_END` around the
measured window (the harness samples the server's CPU and RSS on those lines) and then one
JSON line with its counts, latency percentiles and its own CPU seconds. In idle mode it prints
`BASELINE` after its first connection, waits for `go` on stdin, prints `CONNECTED`, and waits
for `stop`. Every loop is bounded by a message count and a deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from array import array
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, cast

import uvloop
from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

MAX_SAMPLES = 4_000_000
SOURCE_ADDRESSES = (
    16  # spread connections over 127.0.0.2..17 so 10k+ sockets never run out of ports
)


def source(i: int) -> tuple[str, int]:
    return (f"127.0.0.{2 + i % SOURCE_ADDRESSES}", 0)


def emit(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def percentile(sorted_ns: list[int], q: float) -> float | None:
    if not sorted_ns:
        return None
    return sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))] / 1e6


class Window:
    """The measured window: message count, latency samples and the client's own CPU."""

    def __init__(self, max_msgs: int) -> None:
        self.phase = 0  # 0 warm-up, 1 measuring, 2 stopping
        self.count = 0
        self.errors = 0
        self.max_msgs = max_msgs
        self.latency_ns = array("q")
        self.done = asyncio.Event()
        self.wall = 0.0
        self.cpu = 0.0

    def start(self) -> None:
        self.phase = 1
        emit("MEASURE_START")
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def record(self, rtt_ns: int) -> None:
        self.count += 1
        if len(self.latency_ns) < MAX_SAMPLES:
            self.latency_ns.append(rtt_ns)
        if self.count >= self.max_msgs:
            self.stop()

    def replied(self, got: int, size: int, sent_at: int) -> bool:
        """A whole reply is in: check its size, record its round trip; True: send the next."""
        if got != size:
            self.errors += 1
        if self.phase == 1:
            self.record(time.perf_counter_ns() - sent_at)
        return self.phase < 2

    def stop(self) -> None:
        if self.phase != 1:
            return
        self.phase = 2
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        emit("MEASURE_END")
        self.done.set()

    async def run(self, warmup: float, duration: float) -> None:
        await asyncio.sleep(warmup)
        self.start()
        try:
            await asyncio.wait_for(self.done.wait(), duration)
        except TimeoutError:
            self.stop()

    def report(self, **extra: Any) -> dict[str, Any]:
        lat = sorted(self.latency_ns)
        return {
            "client": "picows",
            "msgs": self.count,
            "elapsed": self.wall,
            "msgs_per_s": self.count / self.wall if self.wall else 0.0,
            "p50_ms": percentile(lat, 0.50),
            "p99_ms": percentile(lat, 0.99),
            "p999_ms": percentile(lat, 0.999),
            "max_ms": lat[-1] / 1e6 if lat else None,
            "client_cpu_s": self.cpu,
            "errors": self.errors,
            **extra,
        }


class Conn(WSListener):
    """A connection that keeps its transport and answers the server's pings, counting them."""

    pings = 0

    def __init__(self) -> None:
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.PING:
            Conn.pings += 1
            transport.send_pong(frame.get_payload_as_bytes())


class ReplyConn(Conn):
    """A connection that sends `payload` messages and takes the replies whole."""

    def __init__(self, window: Window, msg_type: WSMsgType, payload: bytes) -> None:
        super().__init__()
        self.window = window
        self.msg_type = msg_type
        self.payload = payload
        self.size = len(payload)
        self.got = 0

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind is WSMsgType.PING:
            transport.send_pong(frame.get_payload_as_bytes())
            return
        if kind is WSMsgType.CLOSE:
            return
        if kind is not self.msg_type and kind is not WSMsgType.CONTINUATION:
            self.window.errors += 1
            return
        self.got += frame.payload_size
        if not frame.fin:
            return
        got, self.got = self.got, 0
        self.reply(got)

    def reply(self, got: int) -> None:
        """A whole reply of `got` payload bytes is in."""


class EchoConn(ReplyConn):
    """One closed-loop connection: send, wait for the whole echo, record the round trip."""

    sent_at = 0

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter_ns()
        self.transport.send(self.msg_type, self.payload)

    def reply(self, got: int) -> None:
        if self.window.replied(got, self.size, self.sent_at):
            self.send()


class OpenConn(ReplyConn):
    """An open-loop connection: sends when the schedule says, whatever is still in flight."""

    def __init__(self, window: Window, msg_type: WSMsgType, payload: bytes) -> None:
        super().__init__(window, msg_type, payload)
        self.due: deque[tuple[int, bool]] = deque()  # (scheduled send time, inside the window)

    def send(self, due: int, measured: bool) -> None:
        assert self.transport is not None
        self.due.append((due, measured))
        self.transport.send(self.msg_type, self.payload)

    def reply(self, got: int) -> None:
        if not self.due:
            self.window.errors += 1
            return
        due, measured = self.due.popleft()
        window = self.window
        if got != self.size:
            window.errors += 1
        if window.phase == 1:  # throughput: the replies that came inside the window
            window.count += 1
        if measured and len(window.latency_ns) < MAX_SAMPLES:  # latency: every message sent
            window.latency_ns.append(time.perf_counter_ns() - due)  # in the window, late or not


class TcpEchoConn(asyncio.Protocol):
    """The raw TCP twin of EchoConn: a message is back when `size` bytes have come back."""

    def __init__(self, window: Window, payload: bytes) -> None:
        self.window = window
        self.payload = payload
        self.size = len(payload)
        self.got = 0
        self.sent_at = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter_ns()
        self.transport.write(self.payload)

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        if self.got < self.size:
            return
        got, self.got = self.got, 0
        if self.window.replied(got, self.size, self.sent_at):
            self.send()


async def gather_bounded(factories: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    """Open connections `limit` at a time, so the listen backlog never overflows."""
    results: list[Any] = []
    for i in range(0, len(factories), limit):
        results.extend(await asyncio.gather(*(f() for f in factories[i : i + limit])))
    return results


async def ws_open(url: str, listener: Callable[[], WSListener], i: int) -> Any:
    _transport, client = await ws_connect(
        listener, url, websocket_handshake_timeout=10, local_addr=source(i), enable_auto_pong=False
    )
    return client


async def close_all(conns: list[Any]) -> None:
    for c in conns:
        t = c.transport
        if t is None:
            continue
        if isinstance(t, WSTransport):
            t.send_close()
            t.disconnect()
        else:
            t.close()
    await asyncio.sleep(0.1)


def payload_of(size: int) -> bytes:
    return b"a" * size


async def open_replying(
    args: argparse.Namespace, kind: Callable[[Window, WSMsgType, bytes], Any]
) -> tuple[Window, list[Any]]:
    """The window and `args.conns` connections of `kind`, sending `args.size` B messages."""
    window = Window(args.max_msgs)
    msg_type = WSMsgType.BINARY if args.type == "binary" else WSMsgType.TEXT
    payload = payload_of(args.size)
    conns = await gather_bounded(
        [
            partial(ws_open, args.url, lambda: kind(window, msg_type, payload), i)
            for i in range(args.conns)
        ],
        100,
    )
    return window, conns


async def run_echo(args: argparse.Namespace) -> dict[str, Any]:
    window, conns = await open_replying(args, EchoConn)
    for c in conns:
        c.send()
    await window.run(args.warmup, args.duration)
    await close_all(conns)
    return window.report(mode="echo", conns=args.conns, size=args.size, type=args.type)


async def run_open(args: argparse.Namespace) -> dict[str, Any]:
    """Messages go out on a fixed schedule, round robin over the connections; the loop spins
    (yielding to I/O between sends) so each leaves within microseconds of its due time."""
    window, conns = await open_replying(args, OpenConn)
    interval = 1e9 / args.rate
    clock = time.perf_counter_ns
    start = clock()
    measure_from = start + int(args.warmup * 1e9)
    measure_to = measure_from + int(args.duration * 1e9)
    sent = sent_in_window = 0
    late_ns = 0
    n = len(conns)
    while True:
        now = clock()
        if now >= measure_to:
            break
        if window.phase == 0 and now >= measure_from:
            window.start()
        due_count = int((now - start) / interval) + 1
        while sent < due_count:
            due = start + int(sent * interval)
            measured = measure_from <= due < measure_to
            conns[sent % n].send(due, measured)
            late_ns = max(late_ns, now - due) if measured else late_ns
            sent_in_window += measured
            sent += 1
        await asyncio.sleep(0)
    window.stop()
    for _ in range(200):  # outstanding replies of the window: at most 2 s
        if not any(m for c in conns for _d, m in c.due):
            break
        await asyncio.sleep(0.01)
    lost = sum(1 for c in conns for _d, m in c.due if m)
    await close_all(conns)
    return window.report(
        mode="open", conns=args.conns, size=args.size, type=args.type, rate=args.rate,
        sent=sent_in_window, lost=lost, max_send_lag_ms=late_ns / 1e6,
    )  # fmt: skip


async def run_tcp(args: argparse.Namespace) -> dict[str, Any]:
    window = Window(args.max_msgs)
    payload = payload_of(args.size)
    host, port = args.url.split("//")[-1].split("/")[0].rsplit(":", 1)
    loop = asyncio.get_running_loop()

    async def one(i: int) -> TcpEchoConn:
        _t, proto = await loop.create_connection(
            lambda: TcpEchoConn(window, payload), host, int(port), local_addr=source(i)
        )
        return proto

    conns: list[TcpEchoConn] = await gather_bounded(
        [partial(one, i) for i in range(args.conns)], 100
    )
    for c in conns:
        c.send()
    await window.run(args.warmup, args.duration)
    await close_all(conns)
    return window.report(mode="tcp", conns=args.conns, size=args.size, type=args.type)


class IdleConn(Conn):
    """Holds a connection open, answering pings; counts the ones the server closes."""

    closed = 0

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        IdleConn.closed += 1


async def read_command(expected: tuple[str, ...], timeout: float) -> str:
    """Wait for one line from the harness on stdin (bounded: a missing harness ends the run)."""
    loop = asyncio.get_running_loop()
    line: str = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), timeout)
    if line.strip() not in expected:
        raise SystemExit(f"expected one of {expected} on stdin, got {line!r}")
    return line.strip()


async def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    """Open connections up to each total of --steps, holding them idle after each step."""
    totals = [int(x) for x in (args.steps or str(args.conns)).split(",")]
    first: IdleConn = await ws_open(args.url, IdleConn, 0)
    emit("BASELINE")
    await read_command(("go",), 120)
    conns: list[IdleConn] = []
    steps: list[dict[str, Any]] = []
    for total in totals:
        started = time.perf_counter()
        conns += await gather_bounded(
            [partial(ws_open, args.url, IdleConn, i) for i in range(len(conns) + 1, total + 1)],
            200,
        )
        connect_s = time.perf_counter() - started
        emit("CONNECTED")
        pings_before = Conn.pings
        command = await read_command(("next", "stop"), args.duration + 120)
        steps.append({"conns": len(conns), "connect_s": connect_s,
                      "pings_answered_while_held": Conn.pings - pings_before,
                      "closed_by_server": IdleConn.closed})  # fmt: skip
        if command == "stop":
            break
    report = {
        "client": "picows",
        "mode": "idle",
        "steps": steps,
        "client_cpu_s": time.process_time(),
        "errors": IdleConn.closed,
    }
    await close_all([first, *conns])
    return report


class Receiver(Conn):
    """A room member: each message carries its sequence number, the fan-out is tallied by it."""

    def __init__(self, fanout: Fanout) -> None:
        super().__init__()
        self.fanout = fanout

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.TEXT:
            self.fanout.delivered(int(frame.get_payload_as_memoryview()[:12]))
        else:
            super().on_ws_frame(transport, frame)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.fanout.lost_receivers += 1


class Fanout:
    """Keeps `inflight` messages in the room; the next goes out when one reached every receiver."""

    def __init__(self, window: Window, receivers: int, size: int, inflight: int) -> None:
        self.window = window
        self.receivers = receivers
        self.size = size
        self.inflight = inflight
        self.seq = 0
        self.sent_at: dict[int, int] = {}
        self.pending: dict[int, int] = {}
        self.lost_receivers = 0
        self.sender: WSTransport | None = None

    def send_next(self) -> None:
        assert self.sender is not None
        self.seq += 1
        text = f"{self.seq:012d}".encode().ljust(self.size, b".")
        self.sent_at[self.seq] = time.perf_counter_ns()
        self.pending[self.seq] = 0
        self.sender.send(WSMsgType.TEXT, text)

    def delivered(self, seq: int) -> None:
        now = time.perf_counter_ns()
        window = self.window
        sent = self.sent_at.get(seq)
        if sent is None:
            window.errors += 1
            return
        if window.phase == 1:
            window.record(now - sent)
        n = self.pending[seq] + 1
        if n < self.receivers - self.lost_receivers:
            self.pending[seq] = n
            return
        del self.pending[seq]
        del self.sent_at[seq]
        if window.phase < 2:
            self.send_next()


async def run_broadcast(args: argparse.Namespace) -> dict[str, Any]:
    window = Window(args.max_msgs)
    fanout = Fanout(window, args.conns, args.size, args.inflight)
    receivers: list[Receiver] = await gather_bounded(
        [partial(ws_open, args.url, lambda: Receiver(fanout), i) for i in range(args.conns)],
        100,
    )
    sender: Conn = await ws_open(args.url, Conn, args.conns)
    fanout.sender = sender.transport
    await asyncio.sleep(0.2)  # let the server register every member before the first message
    for _ in range(args.inflight):
        fanout.send_next()
    await window.run(args.warmup, args.duration)
    lost = fanout.lost_receivers
    await asyncio.sleep(0.2)
    await close_all([*receivers, sender])
    return window.report(
        mode="broadcast",
        conns=args.conns,
        size=args.size,
        inflight=args.inflight,
        messages_sent=fanout.seq,
        lost_receivers=lost,
    )


MODES = {
    "echo": run_echo,
    "tcp": run_tcp,
    "idle": run_idle,
    "broadcast": run_broadcast,
    "open": run_open,
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("mode", choices=sorted(MODES))
    parser.add_argument("--url", required=True, help="ws://127.0.0.1:PORT/path (loopback only)")
    parser.add_argument("--conns", type=int, default=100)
    parser.add_argument("--steps", default="", help="idle: cumulative totals, e.g. 5000,10000")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--type", choices=("text", "binary"), default="text")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--max-msgs", type=int, default=50_000_000)
    parser.add_argument("--inflight", type=int, default=4, help="broadcast: messages in the room")
    parser.add_argument("--rate", type=float, default=1000.0, help="open: messages per second")
    args = parser.parse_args(argv)
    host = args.url.split("//")[-1].split("/")[0].rsplit(":", 1)[0].strip("[]")
    if not (host.startswith("127.") or host in ("localhost", "::1")):
        parser.error(f"loopback targets only, got {host}")
    return args


def main() -> None:
    args = parse_args()
    report = uvloop.run(MODES[args.mode](args))
    emit(json.dumps(report))


if __name__ == "__main__":
    main()
