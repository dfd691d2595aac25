"""One bench worker process: drives its share of the connections on its own event loop.

The parent talks to it through a queue (it puts `ready`, then `progress` every half second,
then `done` with its WorkerResult, or `failed`) and three shared objects: `go` (an Event),
`start_at` (the common start as wall-clock time) and `stop` (an Event, for Ctrl-C).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from service.tools.bench_hist import Histogram
from service.tools.bench_plan import ConnectionPlan, Payloads, WorkerPlan
from service.tools.bench_stream import StreamCheck, expected_count, parse_stream_message

#: Seconds between progress reports to the parent.
PROGRESS_EVERY = 0.5
#: A send that takes longer than this waited for the socket to drain (TCP backpressure).
SEND_WAIT_COUNTS = 0.001
#: Handshakes one worker runs at once when all connections open before the start.
OPEN_CONCURRENCY = 64

WS = aiohttp.ClientWebSocketResponse
_DATA = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


class EventLike(Protocol):
    def is_set(self) -> bool: ...
    def set(self) -> None: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class ValueLike(Protocol):
    value: float


class QueueLike(Protocol):
    def put(self, obj: Any) -> None: ...


@dataclass
class Snapshot:
    """What a worker has done so far; `rate`, `latency` and `cpu` cover the last interval."""

    sent: int
    received: int
    errors: int
    open_connections: int
    rate: float
    latency: Histogram
    cpu: float
    #: Share of the interval the worker was ready to run but waited for a CPU (busy machine).
    cpu_wait: float


@dataclass
class WorkerResult:
    worker: int
    sent: int = 0
    received: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    lost: int = 0
    opened: int = 0
    failed: int = 0
    latency: Histogram = field(default_factory=Histogram)
    #: How late sends left compared with their schedule (open loop): the client's own delay.
    lag: Histogram = field(default_factory=Histogram)
    errors: Counter[str] = field(default_factory=Counter)
    #: (code, who closed first) -> count
    close_codes: Counter[tuple[int, str]] = field(default_factory=Counter)
    #: Seconds sends spent waiting for the socket to drain (the server not reading fast enough).
    send_wait: float = 0.0
    cpu_seconds: float = 0.0
    #: Seconds the worker was runnable but not running: the machine's other load (Linux only).
    cpu_wait_seconds: float = 0.0
    wall_seconds: float = 0.0
    #: Seconds after the start of the last send and of the last reply.
    last_send: float = 0.0
    last_reply: float = 0.0
    #: --receive: stream messages that filled a gap, came twice, or had a ts ahead of our clock.
    out_of_order: int = 0
    duplicates: int = 0
    clock_ahead: int = 0


def cpu_wait() -> float:
    """Seconds this thread has waited on a run queue (Linux schedstat); 0.0 elsewhere."""
    try:
        with open("/proc/thread-self/schedstat") as stat:
            return int(stat.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def run_worker(
    plan: WorkerPlan, queue: QueueLike, go: EventLike, start_at: ValueLike, stop: EventLike
) -> None:
    """Process entry point. Ctrl-C is the parent's to handle: it sets `stop`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    try:
        with runner:
            result = runner.run(Worker(plan, queue, go, start_at, stop).run())
        queue.put(("done", plan.worker, result))
    except BaseException as exc:
        queue.put(("failed", plan.worker, f"{type(exc).__name__}: {exc}"))
        raise


class Worker:
    def __init__(
        self,
        plan: WorkerPlan,
        queue: QueueLike,
        go: EventLike,
        start_at: ValueLike,
        stop: EventLike,
    ) -> None:
        self.plan = plan
        self.config = plan.config
        self.queue = queue
        self.go = go
        self.start_at = start_at
        self.stop = stop
        self.result = WorkerResult(plan.worker)
        self.payloads = Payloads(self.config.size, self.config.binary)
        self.stopping = False
        self.open_now = 0
        self.t0 = 0.0
        self._interval_latency = Histogram()

    async def run(self) -> WorkerResult:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            sockets: dict[int, WS | None] = {}
            # A stream starts at its handshake: --receive connects at the start, like a ramp.
            if not self.config.ramp and not self.config.receive:
                gate = asyncio.Semaphore(OPEN_CONCURRENCY)

                async def open_gated(conn: ConnectionPlan) -> None:
                    async with gate:
                        sockets[conn.index] = await self._open(http)

                await asyncio.gather(*(open_gated(c) for c in self.plan.connections))
            self.queue.put(("ready", self.plan.worker, None))
            if not await self._wait_for_go():
                return self.result
            cpu0, wait0 = time.process_time(), cpu_wait()
            reporter = asyncio.create_task(self._report())
            await asyncio.gather(
                *(self._drive(http, c, sockets.get(c.index)) for c in self.plan.connections)
            )
            reporter.cancel()
            self.result.cpu_seconds = time.process_time() - cpu0
            self.result.cpu_wait_seconds = cpu_wait() - wait0
            self.result.wall_seconds = time.monotonic() - self.t0
        return self.result

    async def _wait_for_go(self) -> bool:
        loop = asyncio.get_running_loop()
        while not await loop.run_in_executor(None, self.go.wait, 0.2):
            if self.stop.is_set():
                return False
        self.t0 = time.monotonic() + (self.start_at.value - time.time())
        return True

    async def _open(self, http: aiohttp.ClientSession) -> WS | None:
        target = self.config.target
        try:
            ws = await asyncio.wait_for(
                http.ws_connect(
                    target.url,
                    headers=list(target.headers),
                    protocols=target.subprotocols,
                    max_msg_size=0,
                ),
                self.config.connect_timeout,
            )
        except aiohttp.WSServerHandshakeError as exc:
            self._fail_open(f"connect: HTTP {exc.status}")
            return None
        except TimeoutError:
            self._fail_open("connect: timed out")
            return None
        except (aiohttp.ClientError, OSError) as exc:
            self._fail_open(f"connect: {type(exc).__name__}")
            return None
        self.result.opened += 1
        self.open_now += 1
        return ws

    def _fail_open(self, reason: str) -> None:
        self.result.failed += 1
        self.result.errors[reason] += 1

    async def _drive(
        self, http: aiohttp.ClientSession, conn: ConnectionPlan, ws: WS | None
    ) -> None:
        await self._sleep_until(conn.start)
        if ws is None:
            if (self.config.ramp or self.config.receive) and not self.stopping:
                ws = await self._open(http)
            if ws is None:
                return
        try:
            if self.config.receive:
                await self._receive_only(ws)
            elif self.config.open_loop:
                await self._open_loop(conn, ws, self.config.interval)
            else:
                await self._closed_loop(conn, ws)
        finally:
            if not ws.closed:
                await ws.close()
                self.result.close_codes[(ws.close_code or 1006, "client")] += 1
            self.open_now -= 1

    async def _sleep_until(self, at: float) -> None:
        """Sleeps until `at` seconds after the start; when already late, still lets others run
        (a connection catching up must not starve the receivers and the other senders)."""
        await asyncio.sleep(max(0.0, self.t0 + at - time.monotonic()))

    def _more(self, conn: ConnectionPlan, k: int, due: float) -> bool:
        """Whether message k (due `due` seconds after the start) is still to be sent."""
        if self.stopping:
            return False
        if conn.quota is not None:
            return k < conn.quota
        assert self.config.duration is not None
        return due < self.config.duration

    async def _send(self, ws: WS, k: int) -> bool:
        data = self.payloads.make(k)
        started = time.monotonic()
        try:
            if isinstance(data, str):
                await ws.send_str(data)
            else:
                await ws.send_bytes(data)
        except (aiohttp.ClientError, ConnectionError):
            self.result.errors["send failed"] += 1
            return False
        waited = time.monotonic() - started
        if waited > SEND_WAIT_COUNTS:
            self.result.send_wait += waited
        self.result.sent += 1
        self.result.bytes_sent += self.payloads.size
        self.result.last_send = time.monotonic() - self.t0
        return True

    def _received(self, k: int, data: str | bytes, latency: float) -> None:
        result = self.result
        result.received += 1
        result.bytes_received += len(data)
        result.last_reply = time.monotonic() - self.t0
        result.latency.record(latency)
        self._interval_latency.record(latency)
        if not self.payloads.matches(k, data):
            result.errors["reply differs from message"] += 1

    def _closed_by_server(self, ws: WS, msg: aiohttp.WSMessage) -> None:
        if msg.type is aiohttp.WSMsgType.CLOSING:  # we are closing: not the server's doing
            return
        code = ws.close_code or 1006
        self.result.close_codes[(code, "server")] += 1
        self.result.errors[f"closed by server ({code})"] += 1

    async def _open_loop(self, conn: ConnectionPlan, ws: WS, interval: float) -> None:
        pending: deque[tuple[int, float]] = deque()  # (k, due) of messages awaiting their echo
        done_sending = asyncio.Event()

        async def receive() -> None:
            while True:
                msg = await ws.receive()
                if msg.type not in _DATA:
                    self._closed_by_server(ws, msg)
                    return
                now = time.monotonic()
                # An echo names its message (Payloads): the ones before it that never came were
                # lost (a route that drops keeps the order of the rest).
                seq = self.payloads.seq_of(msg.data)
                while pending and seq is not None and pending[0][0] < seq:
                    pending.popleft()
                    self.result.lost += 1
                if not pending:
                    self.result.errors["unexpected message"] += 1
                    continue
                k, due = pending.popleft()
                self._received(k, msg.data, now - (self.t0 + due))
                if done_sending.is_set() and not pending:
                    return

        receiver = asyncio.create_task(receive())
        k = 0
        while self._more(conn, k, due := conn.due(k, interval)) and not receiver.done():
            await self._sleep_until(due)
            if ws.closed:
                break
            self.result.lag.record(max(0.0, time.monotonic() - self.t0 - due))
            pending.append((k, due))
            if not await self._send(ws, k):
                pending.pop()
                break
            k += 1
        done_sending.set()
        if pending and not receiver.done():
            await asyncio.wait({receiver}, timeout=self.config.drain_timeout)
        self.result.lost += len(pending)
        if not receiver.done():
            await ws.close()  # wakes the receiver with CLOSING
            self.result.close_codes[(ws.close_code or 1006, "client")] += 1
        await receiver

    async def _receive_only(self, ws: WS) -> None:
        """Reads a stream until the server closes it or --duration is over; sends nothing.

        The end of --duration is a close from another task (`_close_at`), which wakes the
        reader with CLOSING: a receive timeout would leave aiohttp's connection marked 1006
        and cut it without the close handshake.
        """
        check = StreamCheck()
        complete = False
        result = self.result
        server_closed = asyncio.Event()
        closer = asyncio.create_task(self._close_at(ws, server_closed))
        try:
            while True:
                msg = await ws.receive()
                now_ns = time.time_ns()
                if msg.type is aiohttp.WSMsgType.CLOSING:  # our close: --duration is over
                    break
                if msg.type not in _DATA:
                    complete = ws.close_code == 1000 and msg.type is aiohttp.WSMsgType.CLOSE
                    if complete:
                        result.close_codes[(1000, "server")] += 1  # the end of the stream's count
                    else:
                        self._closed_by_server(ws, msg)
                    server_closed.set()
                    break
                self._stream_arrival(check, msg.data, now_ns)
        except BaseException:
            closer.cancel()
            raise
        await closer
        result.lost += check.lost(expected_count(self.config.target.url), complete)
        result.out_of_order += check.out_of_order
        result.duplicates += check.duplicates
        result.clock_ahead += check.clock_ahead

    def _stream_arrival(self, check: StreamCheck, data: str | bytes, now_ns: int) -> None:
        result = self.result
        try:
            seq, ts = parse_stream_message(data)
        except ValueError as exc:
            result.errors[f"not a stream message ({exc})"] += 1
            return
        delay = check.arrived(seq, ts, now_ns)
        result.received += 1
        result.bytes_received += len(data)
        result.last_reply = time.monotonic() - self.t0
        result.latency.record(delay)
        self._interval_latency.record(delay)

    async def _close_at(self, ws: WS, server_closed: asyncio.Event) -> None:
        """Closes `ws` when --duration is over or the run is stopped (Ctrl-C), unless the
        server closed it first."""
        assert self.config.duration is not None
        end = self.t0 + self.config.duration
        while not self.stopping and (left := end - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(server_closed.wait(), min(PROGRESS_EVERY, left))
            except TimeoutError:
                continue
            return
        if not ws.closed:
            await ws.close()
            self.result.close_codes[(ws.close_code or 1006, "client")] += 1

    async def _closed_loop(self, conn: ConnectionPlan, ws: WS) -> None:
        k = 0
        while self._more(conn, k, time.monotonic() - self.t0):
            sent_at = time.monotonic()
            if not await self._send(ws, k):
                return
            try:
                msg = await ws.receive(timeout=self.config.drain_timeout)
            except TimeoutError:
                self.result.lost += 1
                return
            if msg.type not in _DATA:
                self.result.lost += 1
                self._closed_by_server(ws, msg)
                return
            self._received(k, msg.data, time.monotonic() - sent_at)
            k += 1

    async def _report(self) -> None:
        cpu, wait, wall, received = time.process_time(), cpu_wait(), time.monotonic(), 0
        while True:
            await asyncio.sleep(PROGRESS_EVERY)
            if self.stop.is_set():
                self.stopping = True
            cpu_now, wait_now, wall_now = time.process_time(), cpu_wait(), time.monotonic()
            snapshot = Snapshot(
                sent=self.result.sent,
                received=self.result.received,
                errors=sum(self.result.errors.values()) + self.result.lost,
                open_connections=self.open_now,
                rate=(self.result.received - received) / (wall_now - wall),
                latency=self._interval_latency,
                cpu=(cpu_now - cpu) / (wall_now - wall),
                cpu_wait=(wait_now - wait) / (wall_now - wall),
            )
            self._interval_latency = Histogram()
            cpu, wait, wall, received = cpu_now, wait_now, wall_now, self.result.received
            self.queue.put(("progress", self.plan.worker, snapshot))
