"""stream: the server pushes `count` messages (or for `duration`) at `rate` a second to each client.

A text message is a JSON object `{"seq": 0, "ts": <Unix ns at send>}` padded with spaces to
`size` bytes; a binary one is seq and ts as two big-endian 64-bit integers, zero-padded to
`size`. So a client can check loss (seq has no gap), order and one-way delay (now - ts).
After `count` messages, or when `duration` has passed, the server closes with 1000.

Every stream of the loop waits in one timer wheel of 5 ms slots (`Wheel`), whose slots take
entries on the loop's one timer heap (service/timers.py, which the per-message faults
use too): no task, no timer per connection or message. Messages go
through the connection's own `ws.send`, so per-message faults apply and a client that reads
too slowly is closed with 1008 once its send queue is over SEND_QUEUE_BYTES (the stream never
waits for a client). The first message goes at once;
message k is due at k / rate after it. A stream that fell more than a second behind (a busy
loop) restarts its schedule from now rather than bursting to catch up.
"""

from __future__ import annotations

import logging
import struct
import time
from functools import partial

import orjson
from aiohttp import web

from .. import closecodes
from ..faults.params import FaultError, Stream, stream_from_query
from ..middlewares import Handler, Middleware, refuse
from ..perloop import PerLoop
from ..timers import Timers, loop_timers
from ..websocket import WebSocket
from .context import RouteContext, WebSocketHandler

#: A stream's settings after the handshake's query (set on stream routes with query_overrides).
STREAM_KEY = web.RequestKey("wsrelay_stream", Stream)
_HEADER = struct.Struct("!QQ")
#: The wheel's slot width in seconds: how early a message may go, and how wakeups batch.
GRID = 0.005
log = logging.getLogger("wsrelay.stream")


def text_message(seq: int, ts: int, size: int) -> str:
    """`{"seq":..,"ts":..}` padded with spaces before the `}` to `size` bytes (if it is larger)."""
    body = orjson.dumps({"seq": seq, "ts": ts})
    missing = size - len(body)
    if missing > 0:
        body = body[:-1] + b" " * missing + b"}"
    return body.decode()


def binary_message(seq: int, ts: int, size: int) -> bytes:
    """seq and ts as big-endian unsigned 64-bit integers, zero bytes up to `size`."""
    head = _HEADER.pack(seq, ts)
    missing = size - len(head)
    return head + bytes(missing) if missing > 0 else head


class Push:
    """One client's stream: what it was sent so far and when the next message is due."""

    __slots__ = ("_end", "_start", "sent", "settings", "slot", "ws")

    def __init__(self, ws: WebSocket, settings: Stream, now: float) -> None:
        self.ws = ws
        self.settings = settings
        self.sent = 0
        self._start = now
        self._end = now + settings.duration if settings.duration is not None else None
        #: The wheel's slot this stream waits in (None: not waiting).
        self.slot: int | None = None

    def due(self, now: float) -> float | None:
        """Send what is due by `now`; the next deadline, or None when the stream is over."""
        ws = self.ws
        settings = self.settings
        rate = settings.rate
        end = self._end
        over = end is not None and now >= end
        wanted = int(((end if over and end is not None else now) - self._start) * rate) + 1
        if settings.count is not None:
            wanted = min(wanted, settings.count)
        behind = wanted - self.sent
        if behind > rate + 1:  # more than a second late: no burst, the schedule starts again
            self._start = now - self.sent / rate
            behind = 1
        size = settings.size
        make = binary_message if settings.binary else text_message
        for _ in range(behind):
            if ws.closed:  # gone, or a slow consumer cut at 1008 by the last send
                return None
            ws.send(make(self.sent, time.time_ns(), size))
            self.sent += 1
        if ws.closed:
            return None
        if over or (settings.count is not None and self.sent >= settings.count):
            ws.close(closecodes.NORMAL)
            return None
        deadline = self._start + self.sent / rate
        return deadline if end is None else min(deadline, end)


class Wheel:
    """Every stream of an event loop in slots of `GRID` seconds: one timer entry per slot in
    use (on the loop's shared timer heap), not one per stream or per message.

    A slot's streams send what falls due within the next `GRID` seconds when it comes, and
    wait in the slot of their next deadline (the one at or before it). 10,000 streams at 1
    message a second wake the loop 200 times a second.
    """

    __slots__ = ("_slots", "_timers")

    def __init__(self, timers: Timers) -> None:
        self._timers = timers
        self._slots: dict[int, dict[Push, None]] = {}

    def add(self, push: Push, when: float) -> None:
        slot = int(when // GRID)
        waiting = self._slots.get(slot)
        if waiting is None:
            waiting = self._slots[slot] = {}
            self._timers.call_at(slot * GRID, partial(self._run, slot))
        waiting[push] = None
        push.slot = slot

    def discard(self, push: Push) -> None:
        """Take `push` out now (a closed connection: the slot lets go of it at once)."""
        if push.slot is not None:
            self._slots.get(push.slot, {}).pop(push, None)
            push.slot = None

    def _run(self, slot: int) -> None:
        limit = self._timers.time() + GRID
        for push in self._slots.pop(slot, {}):
            push.slot = None
            try:
                deadline = push.due(limit)
            except Exception:  # one stream's failure must not stop the others
                log.exception("stream failed")
                continue
            if deadline is not None:
                self.add(push, deadline)

    def __len__(self) -> int:
        """Streams waiting (tests read it)."""
        return sum(len(waiting) for waiting in self._slots.values())


#: The running loop's wheel (made on first use, on the loop's shared timers).
loop_wheel = PerLoop(lambda loop: Wheel(loop_timers(loop))).get


def stream_check(defaults: Stream) -> Middleware:
    """The handshake step of a stream route with query_overrides: 400 for a bad value."""

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            request[STREAM_KEY] = stream_from_query(request.query, defaults)
        except FaultError as error:
            raise refuse(request, "bad_request", web.HTTPBadRequest(text=f"{error}\n")) from None
        return await handler(request)

    return middleware


def stream(ctx: RouteContext) -> WebSocketHandler:
    defaults = ctx.route.stream

    async def handler(request: web.Request, ws: WebSocket) -> None:
        # Client messages are read (and counted) and otherwise ignored; pings are answered.
        push = Push(ws, request.get(STREAM_KEY, defaults), ws.opened_at)
        wheel = loop_wheel()
        wheel.add(push, ws.opened_at)
        ws.on_close.add_done_callback(lambda _: wheel.discard(push))

    return handler
