"""How a `WebSocket` reads: the frame reader's fast path to the callbacks, and the reading task.

On a server connection (and a client one opened by `connect`), messages go to the callbacks
straight from the frame reader (`wire.DirectQueue` hands each parsed message to `_deliver`)
while nothing is queued before them: no task wakes up per message or per ping, and an idle
connection's task waits on one future, not on aiohttp's read coroutines. A callback's awaitable
that is not done yet (a send waiting for the socket to drain, an async callback) holds the next
messages in aiohttp's queue until it completes; that queue stops reading the socket when full.
Closes and a lost link are queued and handled by the reading task (`_read`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import WSMsgType

from . import frames

if TYPE_CHECKING:
    from aiohttp import ClientWebSocketResponse, web

    from .keepalive import Keepalive
    from .metrics import Traffic
    from .websocket import Observer, WebSocket
    from .wire import Wire

log = logging.getLogger("wsrelay.websocket")

Data = str | bytes
T = TypeVar("T")
Callback = Callable[["WebSocket", T], Awaitable[None] | None]


class Reading:
    """The reading half of `WebSocket`: a mixin whose methods use `WebSocket`'s state."""

    __slots__ = (
        "_attention",
        "_dispatching",
        "_on_binary",
        "_on_ping",
        "_on_pong",
        "_on_text",
        "_pending",
        "_reader_task",
        "_reading",
    )

    if TYPE_CHECKING:  # the state `WebSocket` holds, and what it does on a close
        _ws: web.WebSocketResponse | ClientWebSocketResponse[Any]
        _loop: asyncio.AbstractEventLoop
        _done: asyncio.Future[None]
        _reading: bool
        _closing: bool
        _close_task: asyncio.Task[None] | None
        _pending: asyncio.Future[Any] | None
        _attention: asyncio.Future[None] | None
        _dispatching: bool
        _on_text: Callback[str] | None
        _on_binary: Callback[bytes] | None
        _on_ping: Callback[bytes] | None
        _on_pong: Callback[bytes] | None
        _reader_task: asyncio.Task[None] | None
        wire: Wire
        keepalive: Keepalive
        observer: Observer | None
        traffic: Traffic

        @property
        def is_client(self) -> bool: ...
        async def run(self) -> None: ...
        def _fail(self) -> None: ...
        def _finish(self) -> None: ...
        def _peer_closed(self, code: int) -> None: ...
        def _lost(self) -> None: ...
        def _protocol_error(self, error: BaseException) -> None: ...

    async def _read(self) -> None:
        """The reading task: wait while the fast path delivers; handle what it queued."""
        self._start_reading()
        queue = self.wire.queue
        if queue is not None:
            queue.sink = self
        try:
            # Once a close has started, its task owns the socket: nothing is read here.
            while self._close_task is None:
                if queue is not None and queue.idle():
                    self._attention = self._loop.create_future()
                    await self._attention  # until the queue holds something (`_wake`)
                    continue
                msg = await self._ws.receive()
                kind = msg.type
                if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                    await self._received(kind, msg.data)
                elif not await self._control(msg):
                    break
        finally:
            self._attention = None
            if queue is not None:
                queue.sink = None
            self._stop_reading()

    def _wake(self) -> None:
        """Something was queued for the reading task, or the link ended (see `_read`)."""
        attention = self._attention
        if attention is not None:
            self._attention = None
            if not attention.done():
                attention.set_result(None)

    async def _messages(self) -> AsyncIterator[Data]:
        """`async for`: what `_read` does, yielding each data message after its callback."""
        self._start_reading()
        receive = self._ws.receive
        try:
            while self._close_task is None:
                msg = await receive()
                kind = msg.type
                if kind is WSMsgType.TEXT or kind is WSMsgType.BINARY:
                    await self._received(kind, msg.data)
                    yield msg.data
                elif not await self._control(msg):
                    break
        finally:
            self._stop_reading()

    def _start_reading(self) -> None:
        if self._reading:
            raise RuntimeError("this WebSocket is already being read (callbacks or async for)")
        self._reading = True

    def _stop_reading(self) -> None:
        self._reading = False
        if self._close_task is None:
            self._finish()

    def _deliver(self, msg: Any) -> bool:
        """The frame reader's fast path: take a message now, or say False to have it queued."""
        if self._pending is not None or self._dispatching or self._closing:
            return False
        kind = msg.type
        data = msg.data
        callback: Callback[Any] | None
        if kind is WSMsgType.TEXT:
            callback = self._on_text
            self._count_in(data)
        elif kind is WSMsgType.BINARY:
            callback = self._on_binary
            self._count_in(data)
        elif kind is WSMsgType.PING:
            callback = self._on_ping
            self._answer_ping(data)
        elif kind is WSMsgType.PONG:
            callback = self._on_pong
            self._pong_received(data)
        else:
            return False
        if callback is not None:
            try:
                result = callback(self, data)  # type: ignore[arg-type]
            except Exception as error:
                self._callback_failed(error)
            else:
                if result is not None and result is not self._done:  # _done: a send went out
                    self._hold_until(result)
        return True

    async def _received(self, kind: WSMsgType, data: Data) -> None:
        """A data message that came through aiohttp's queue (the reading task's path)."""
        self._count_in(data)
        callback = self._on_text if kind is WSMsgType.TEXT else self._on_binary
        if callback is not None:
            if self._pending is not None:  # the fast path's last callback is not done yet
                await asyncio.wait((self._pending,))
            self._dispatching = True
            try:
                await self._dispatch(callback, data)
            finally:
                self._dispatching = False

    async def _control(self, msg: Any) -> bool:
        """Handle anything but a data message; False once the connection is over."""
        kind = msg.type
        if kind is WSMsgType.PING:
            self._answer_ping(msg.data)
            await self._dispatch(self._on_ping, msg.data)
            return True
        if kind is WSMsgType.PONG:
            self._pong_received(msg.data)
            await self._dispatch(self._on_pong, msg.data)
            return True
        if kind is WSMsgType.CLOSE:
            self._peer_closed(msg.data)
        elif kind is WSMsgType.ERROR:
            self._protocol_error(msg.data)
        else:  # CLOSING (our close() broke the wait) or CLOSED (link lost)
            self._lost()
        return False

    def _answer_ping(self, payload: bytes) -> None:
        if not self._closing:
            with contextlib.suppress(ConnectionResetError):
                self.wire.write(frames.OP_PONG, payload)

    def _pong_received(self, payload: bytes) -> None:
        rtt = self.keepalive.on_pong(payload, self._loop.time())
        if rtt is not None and self.observer is not None:
            self.observer.observe_rtt(rtt)

    def _hold_until(self, result: Any) -> None:
        """Hold the fast path until a callback's awaitable completes."""
        if isinstance(result, asyncio.Future):
            if result.done():
                if not result.cancelled():
                    result.exception()  # a failed send ends the connection by itself
                return
            pending: asyncio.Future[Any] = result
        elif inspect.isawaitable(result):
            pending = asyncio.ensure_future(result)
        else:
            return
        self._pending = pending
        pending.add_done_callback(self._resume)

    def _resume(self, pending: asyncio.Future[Any]) -> None:
        self._pending = None
        if not pending.cancelled() and (error := pending.exception()) is not None:
            self._callback_failed(error)

    def _callback_failed(self, error: BaseException) -> None:
        """A callback raised: as a failing handler does, close with 1011 (a gone peer is not
        a failure: its close is already under way)."""
        if isinstance(error, ConnectionError):
            return
        log.error("callback failed", exc_info=error)
        self._fail()

    def _count_in(self, data: Data) -> None:
        traffic = self.traffic
        if isinstance(data, str):
            traffic.in_text += 1
            traffic.bytes_in += len(data) if data.isascii() else len(data.encode())
        else:
            traffic.in_binary += 1
            traffic.bytes_in += len(data)

    async def _dispatch(self, callback: Callback[Any] | None, data: Any) -> None:
        """Run a callback on the reading task, awaiting what it returns."""
        if callback is not None:
            try:
                result = callback(self, data)  # type: ignore[arg-type]
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception as error:
                self._callback_failed(error)

    def _read_soon(self) -> None:
        # A server handler's task reads once the handler returns; a client has no such task.
        if self.is_client and not self._reading and self._reader_task is None:
            self._reader_task = asyncio.ensure_future(self._read_for_callbacks())

    async def _read_for_callbacks(self) -> None:
        """A client's reading task, unless its owner reads (`run`) by the time it starts."""
        if not self._reading:
            await self.run()
