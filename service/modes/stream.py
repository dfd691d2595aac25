"""stream: the server pushes `count` messages (or for `duration`) at `rate` a second to each client.

A text message is a JSON object `{"seq": 0, "ts": <Unix ns at send>}` padded with spaces to
`size` bytes; a binary one is seq and ts as two big-endian 64-bit integers, zero-padded to
`size`. So a client can check loss (seq has no gap), order and one-way delay (now - ts).
After `count` messages, or when `duration` has passed, the server closes with 1000.

Every stream of the process runs from the loop's one timer heap (service/faults/timers.py,
which the per-message faults use too): no task, no timer handle per connection. Messages go
through the connection's own `ws.send`, so per-message faults apply and a client that reads
too slowly is closed with 1008 once its send queue is over SEND_QUEUE_BYTES (the stream never
waits for a client). The first message goes at once;
message k is due at k / rate after it. A stream that fell more than a second behind (a busy
loop) restarts its schedule from now rather than bursting to catch up.
"""

from __future__ import annotations

import struct
import time

import orjson
from aiohttp import web

from .. import closecodes
from ..faults.params import FaultError, Stream, stream_from_query
from ..faults.timers import COALESCE, Entry, Timers, loop_timers
from ..middlewares import Handler, Middleware, refuse
from ..websocket import WebSocket
from .context import RouteContext, WebSocketHandler

#: A stream's settings after the handshake's query (set on stream routes with query_overrides).
STREAM_KEY = web.RequestKey("wsrelay_stream", Stream)
_HEADER = struct.Struct("!QQ")


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

    __slots__ = ("_end", "_entry", "_start", "_timers", "sent", "settings", "ws")

    def __init__(self, ws: WebSocket, settings: Stream, now: float) -> None:
        self.ws = ws
        self.settings = settings
        self.sent = 0
        self._start = now
        self._end = now + settings.duration if settings.duration is not None else None
        self._timers: Timers | None = None
        self._entry: Entry | None = None

    def start(self, timers: Timers) -> None:
        """Run on `timers` from the stream's start until it is over or `stop` is called."""
        self._timers = timers
        self._entry = timers.call_at(self._start, self._tick)

    def stop(self) -> None:
        Timers.cancel(self._entry)
        self._entry = None

    def _tick(self) -> None:
        timers = self._timers
        assert timers is not None
        # What falls within the heap's coalescing window goes now, not one wakeup later.
        deadline = self.due(timers.time() + COALESCE)
        self._entry = None if deadline is None else timers.call_at(deadline, self._tick)

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
        push.start(loop_timers())
        ws.on_close.add_done_callback(lambda _: push.stop())

    return handler
