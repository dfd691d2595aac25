"""The seed's WebSocket API (Vapor's docs) in Python, for both server and client connections.

`send` writes the frame at once and returns a future (Vapor's promise): already done unless the
socket is over its high-water mark, so `ws.send(x)` without `await` is fine, and `await
ws.send(x)` adds backpressure. `on_text`/`on_binary`/`on_ping`/`on_pong` take plain or async
callbacks `(ws, data)`, run straight from the frame reader (see `run`); `async for data in ws`
yields `str` and `bytes`. `close()` returns a future; `on_close` completes with the close code
whichever side closed; `close_code` and `latency` are set as Vapor's `closeCode` and ping round
trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, TypeVar

import aiohttp
from aiohttp import ClientWebSocketResponse, WSMsgType, web

from . import closecodes, frames
from .keepalive import Action, Keepalive, KeepaliveScheduler
from .metrics import Traffic
from .wire import DirectClientResponse, GuardedResponse, Wire, client_max_msg_size

log = logging.getLogger("wsrelay.websocket")

Data = str | bytes
T = TypeVar("T")
Callback = Callable[["WebSocket", T], Awaitable[None] | None]
Payload = str | bytes | bytearray | memoryview


class Observer(Protocol):
    """Who is told about a connection's life: a route's or an upstream's metrics."""

    def opened(self, ws: WebSocket) -> None: ...

    def observe_rtt(self, rtt: float) -> None: ...

    def ping_timed_out(self) -> None: ...

    def dropped(self, reason: str, count: int = 1) -> None: ...

    def closed(self, ws: WebSocket) -> None: ...


@dataclass(frozen=True, slots=True)
class Options:
    """Per-connection limits; a route resolves them once for all its connections."""

    max_message_bytes: int = 1_048_576
    send_queue_bytes: int = 1_048_576
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    idle_timeout: float | None = None
    close_timeout: float = 5.0
    protocols: tuple[str, ...] = ()
    compress: bool = False
    #: A text sent to every client as soon as it is connected (server side).
    greeting: str | None = None


DEFAULT_OPTIONS = Options()
#: Tasks nobody awaits (closing an owned client session), kept referenced until done.
_background: set[asyncio.Future[None]] = set()


class _LoopShared:
    """What every connection on one event loop shares: the keepalive scheduler, and the
    completed future that a send returns when its frame went out at once."""

    __slots__ = ("done", "scheduler")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.scheduler = KeepaliveScheduler()
        self.done: asyncio.Future[None] = loop.create_future()
        self.done.set_result(None)


_shared: dict[asyncio.AbstractEventLoop, _LoopShared] = {}


def _loop_shared(loop: asyncio.AbstractEventLoop) -> _LoopShared:
    shared = _shared.get(loop)
    if shared is None:
        for closed in [known for known in _shared if known.is_closed()]:
            del _shared[closed]
        shared = _shared[loop] = _LoopShared(loop)
    return shared


class WebSocket:
    """One open WebSocket connection, server or client side."""

    __slots__ = (
        "__weakref__",
        "_attention",
        "_close_task",
        "_closing",
        "_dispatching",
        "_done",
        "_finished",
        "_loop",
        "_on_binary",
        "_on_close",
        "_on_ping",
        "_on_pong",
        "_on_text",
        "_options",
        "_owned_session",
        "_pending",
        "_reader_task",
        "_reading",
        "_ws",
        "close_code",
        "closed_by_peer",
        "keepalive",
        "observer",
        "opened_at",
        "request",
        "traffic",
        "wire",
    )

    def __init__(
        self,
        ws: web.WebSocketResponse | ClientWebSocketResponse[Any],
        options: Options = DEFAULT_OPTIONS,
        observer: Observer | None = None,
        request: web.BaseRequest | None = None,
    ) -> None:
        self._ws = ws
        #: The upgrade request of a server connection (None on the client side).
        self.request = request
        self._options = options
        self._loop = asyncio.get_running_loop()
        self.wire = Wire(ws)
        self.observer = observer
        #: Messages and bytes this connection moved; metrics sum these when scraped.
        self.traffic = Traffic()
        #: The close code: ours if we closed, the peer's if it did, 1006 if the link was lost.
        self.close_code: int | None = None
        #: True when the peer started the close (or vanished), False when this side did.
        self.closed_by_peer = False
        self._closing = False
        self._finished = False
        self._reading = False
        #: What the last callback returned, not done yet: later messages wait for it.
        self._pending: asyncio.Future[Any] | None = None
        #: What the reading task waits on while the frame reader hands messages over (`run`).
        self._attention: asyncio.Future[None] | None = None
        #: True while the reading task runs a callback (the reader's fast path then queues).
        self._dispatching = False
        self._on_text: Callback[str] | None = None
        self._on_binary: Callback[bytes] | None = None
        self._on_ping: Callback[bytes] | None = None
        self._on_pong: Callback[bytes] | None = None
        self._on_close: asyncio.Future[int] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._owned_session: aiohttp.ClientSession | None = None
        shared = _loop_shared(self._loop)
        self._done = shared.done
        #: When the connection opened, on the event loop's clock.
        self.opened_at = self._loop.time()
        transport = self.wire.transport
        if options.send_queue_bytes < transport.get_write_buffer_limits()[1]:
            # The send-queue check runs when the transport pauses: make it pause early enough.
            transport.set_write_buffer_limits(high=options.send_queue_bytes)
        self.keepalive = Keepalive(
            self._loop.time(), options.ping_interval, options.ping_timeout, options.idle_timeout
        )
        shared.scheduler.add(self)
        if observer is not None:
            observer.opened(self)

    # -- facts ---------------------------------------------------------------------------------
    @property
    def is_client(self) -> bool:
        return isinstance(self._ws, ClientWebSocketResponse)

    @property
    def closed(self) -> bool:
        """True once a close started on either side: nothing more can be sent."""
        return self._closing

    @property
    def latency(self) -> float | None:
        """The last ping round trip in seconds (None before the first pong)."""
        return self.keepalive.latency

    @property
    def age(self) -> float:
        """Seconds since the connection opened."""
        return self._loop.time() - self.opened_at

    @property
    def activity(self) -> int:
        """Messages received so far; the keepalive samples it to spot idle connections."""
        return self.traffic.in_text + self.traffic.in_binary

    @property
    def subprotocol(self) -> str | None:
        """The subprotocol both sides agreed on, if any."""
        if isinstance(self._ws, web.WebSocketResponse):
            return self._ws.ws_protocol
        return self._ws.protocol

    @property
    def http_response(self) -> web.WebSocketResponse:
        """The aiohttp response of a server connection (what an aiohttp handler returns)."""
        if not isinstance(self._ws, web.WebSocketResponse):
            raise TypeError("a client WebSocket has no HTTP response")
        return self._ws

    @property
    def on_close(self) -> asyncio.Future[int]:
        """Completes with the close code when the connection has closed, whoever closed it."""
        if self._on_close is None:
            self._on_close = self._loop.create_future()
            if self._finished:
                self._on_close.set_result(self._final_code())
        return self._on_close

    # -- sending -------------------------------------------------------------------------------
    def send(self, data: Payload) -> asyncio.Future[None]:
        """Send `str` as a text frame, bytes-like as a binary frame.

        The frame is written before this returns. The future is done at once unless the socket
        is over its high-water mark (then when it has drained), or failed if the connection is
        closed or the receiver is a slow consumer. Not awaiting it is allowed.
        """
        if isinstance(data, str):
            payload = data.encode()
            opcode = frames.OP_TEXT
            self.traffic.out_text += 1
        else:
            payload = data if isinstance(data, bytes) else bytes(data)
            opcode = frames.OP_BINARY
            self.traffic.out_binary += 1
        self.traffic.bytes_out += len(payload)
        return self._send(opcode, payload)

    def _send(self, opcode: int, payload: bytes) -> asyncio.Future[None]:
        if self._closing:
            return self._failed(ConnectionResetError("the WebSocket is closed"))
        wire = self.wire
        # A queue already over the bound is a slow consumer; one message may take it past.
        if wire.transport.get_write_buffer_size() > self._options.send_queue_bytes:
            return self._slow_consumer()
        if wire.compressed:
            return asyncio.ensure_future(wire.send_compressed(opcode, payload))
        try:
            paused = wire.write(opcode, payload)
        except ConnectionResetError as error:
            return self._failed(error)
        if paused:  # over the high-water mark: the future completes when it has drained
            return asyncio.ensure_future(wire.drain())
        return self._done

    def send_frames(self, data: bytes, texts: int, binaries: int, size: int) -> bool:
        """Write frames encoded once for many receivers (see `frames.encode`): `texts` and
        `binaries` messages of `size` payload bytes in all, for the traffic counts.

        Never waits: a receiver whose queue is over the limit is closed as a slow consumer
        (1008) so it cannot slow down the others. Returns whether the frames were queued.
        """
        transport = self.wire.transport
        # The peer may be gone before this connection's reader has seen it: check the transport.
        if self._closing or transport.is_closing():
            return False
        if transport.get_write_buffer_size() > self._options.send_queue_bytes:
            self._slow_consumer()
            return False
        transport.write(data)
        traffic = self.traffic
        traffic.out_text += texts
        traffic.out_binary += binaries
        traffic.bytes_out += size
        return True

    def _failed(self, error: BaseException) -> asyncio.Future[None]:
        future = self._loop.create_future()
        future.set_exception(error)
        future.exception()  # retrieved: an ignored send failure is not an unhandled error
        return future

    def _slow_consumer(self) -> asyncio.Future[None]:
        """Close a receiver whose send queue went over SEND_QUEUE_BYTES; its send fails."""
        if self.observer is not None:
            self.observer.dropped("slow_consumer")
        self.close(closecodes.POLICY_VIOLATION, "slow consumer")
        return self._failed(ConnectionResetError("slow consumer: the send queue is full"))

    # -- receiving -----------------------------------------------------------------------------
    def on_text(self, callback: Callback[str]) -> None:
        """Call `callback(ws, text)` for every text message."""
        self._subscribe(WSMsgType.TEXT, callback)

    def on_binary(self, callback: Callback[bytes]) -> None:
        """Call `callback(ws, data)` for every binary message."""
        self._subscribe(WSMsgType.BINARY, callback)

    def on_ping(self, callback: Callback[bytes]) -> None:
        """Call `callback(ws, payload)` for every ping (answered with a pong automatically)."""
        self._subscribe(WSMsgType.PING, callback)

    def on_pong(self, callback: Callback[bytes]) -> None:
        """Call `callback(ws, payload)` for every pong (keepalive pongs included)."""
        self._subscribe(WSMsgType.PONG, callback)

    def _subscribe(self, kind: WSMsgType, callback: Callback[Any]) -> None:
        # One slot per kind, not a dict: ten thousand idle connections hold these.
        if kind is WSMsgType.TEXT:
            self._on_text = callback
        elif kind is WSMsgType.BINARY:
            self._on_binary = callback
        elif kind is WSMsgType.PING:
            self._on_ping = callback
        else:
            self._on_pong = callback
        # A server handler's task reads once the handler returns; a client has no such task.
        if self.is_client and not self._reading and self._reader_task is None:
            self._reader_task = asyncio.ensure_future(self._read_for_callbacks())

    async def _read_for_callbacks(self) -> None:
        """A client's reading task, unless its owner reads (`run`) by the time it starts."""
        if not self._reading:
            await self.run()

    async def run(self) -> None:
        """Read until the connection closes, handing messages to the callbacks.

        On a server connection (and a client one opened by `connect`), messages go to the
        callbacks straight from the frame reader while nothing is queued before them: no task
        wakes up per message or per ping, and an idle connection's task waits on one future,
        not on aiohttp's read coroutines. A callback's awaitable that is not done yet (a send
        waiting for the socket to drain, an async callback) holds the next messages in
        aiohttp's queue until it completes; that queue stops reading the socket when full.
        Closes, protocol errors and a lost link are queued and handled here.
        """
        self._start_reading()
        queue = self.wire.queue
        if queue is not None:
            queue.sink = self
        try:
            # Once this side's close has started, its task owns the socket: a receive() here
            # would make aiohttp's client start a second close with the default code.
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
        """Something was queued for the reading task, or the link ended (see `run`)."""
        attention = self._attention
        if attention is not None:
            self._attention = None
            if not attention.done():
                attention.set_result(None)

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[Data]:
        """`async for`: what `run` does, yielding each data message after its callback."""
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
        """The frame reader's fast path (see `run`): take a message now, or say False."""
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
                result = callback(self, data)
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
            await self._peer_closed(msg.data)
        elif kind is WSMsgType.ERROR:
            self._protocol_error(msg.data)
        else:  # CLOSING (our close() broke the wait) or CLOSED (link lost)
            self._lost()
        return False

    def _answer_ping(self, payload: bytes) -> None:
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
        self.close(closecodes.INTERNAL_ERROR, "internal error")

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
                result = callback(self, data)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception as error:
                self._callback_failed(error)

    async def _peer_closed(self, code: int) -> None:
        """Answer a peer's close frame: echo a valid code, 1002 for one that is not."""
        self.closed_by_peer = True
        self._closing = True
        self.close_code = code or closecodes.NO_STATUS
        reply = closecodes.reply_code(code)
        with contextlib.suppress(Exception):
            await self._close_socket(reply, "")

    def _protocol_error(self, error: BaseException) -> None:
        """The peer broke the protocol or a limit; aiohttp has sent the close frame already."""
        if not self._closing:
            self._closing = True
            code = error.code if isinstance(error, aiohttp.WebSocketError) else None
            self.close_code = code or closecodes.ABNORMAL
            self.closed_by_peer = code is None

    def _lost(self) -> None:
        """The read side ended without a close frame from the peer."""
        if not self._closing:
            self._closing = True
            self.closed_by_peer = True
            self.close_code = closecodes.ABNORMAL

    # -- closing -------------------------------------------------------------------------------
    def close(self, code: int = closecodes.NORMAL, reason: str = "") -> asyncio.Future[None]:
        """Start the closing handshake with `code`; the future completes when it is done."""
        if self._close_task is None:
            if self._closing:  # the peer closed first, or the link is gone
                return self._done
            self._closing = True
            self.close_code = code
            self._close_task = asyncio.ensure_future(self._close(code, reason))
            self._wake()  # the reading task stops: the close owns the socket now
        return self._close_task

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self._close_socket(code, reason), self._options.close_timeout)
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            self.wire.transport.abort()
        finally:
            self._finish()

    async def _close_socket(self, code: int, reason: str) -> None:
        message = reason.encode()[:123]
        if isinstance(self._ws, GuardedResponse):
            await self._ws.close_unanswered(code, message)
        elif isinstance(self._ws, web.WebSocketResponse):
            await self._ws.close(code=code, message=message, drain=False)
        else:
            await self._ws.close(code=code, message=message)

    def abort(self, code: int = closecodes.INTERNAL_ERROR, reason: str = "") -> None:
        """Drop the link at once: a close frame with `code` is attempted, 1006 is recorded."""
        if self._finished:
            return
        self._closing = True
        self.close_code = closecodes.ABNORMAL
        transport = self.wire.transport
        if not transport.is_closing():
            transport.write(frames.encode(frames.OP_CLOSE, frames.close_payload(code, reason)))
        transport.abort()
        if not self._reading:
            self._finish()

    def keepalive_due(self, action: Action) -> None:
        """Called by the keepalive scheduler when this connection's deadline comes."""
        if action is Action.PING:
            payload = self.keepalive.ping_payload
            assert payload is not None
            with contextlib.suppress(ConnectionResetError):
                self.wire.write(frames.OP_PING, payload)
        elif action is Action.PING_TIMEOUT:
            if self.observer is not None:
                self.observer.ping_timed_out()
            self.abort(closecodes.INTERNAL_ERROR, "ping timeout")
        else:
            self.close(closecodes.POLICY_VIOLATION, "idle timeout")

    def _final_code(self) -> int:
        return self.close_code if self.close_code is not None else closecodes.ABNORMAL

    def _finish(self) -> None:
        """Runs once when the connection is over: metrics, on_close, owned resources."""
        if self._finished:
            return
        self._finished = True
        self._closing = True
        _loop_shared(self._loop).scheduler.discard(self)
        if self.close_code is None:
            self.close_code = closecodes.ABNORMAL
            self.closed_by_peer = True
        if self._on_close is not None and not self._on_close.done():
            self._on_close.set_result(self.close_code)
        if self.observer is not None:
            self.observer.closed(self)
        if self._owned_session is not None:
            task = asyncio.ensure_future(self._owned_session.close())
            _background.add(task)
            task.add_done_callback(_background.discard)
            self._owned_session = None

    async def wait_closed(self) -> int:
        """Wait until the connection is fully over and return its close code."""
        # Shielded: a waiter being cancelled (aiohttp cancels a handler whose peer is gone)
        # must not cancel the future every other waiter shares.
        return await asyncio.shield(self.on_close)

    # -- client side ---------------------------------------------------------------------------
    @classmethod
    def connect(
        cls,
        url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        headers: dict[str, str] | None = None,
        protocols: Iterable[str] = (),
        options: Options = DEFAULT_OPTIONS,
        observer: Observer | None = None,
        connect_timeout: float = 10.0,
    ) -> Connecting:
        """Open a client connection: `ws = await WebSocket.connect(url)`, or `async with`."""
        return Connecting(
            cls._open(url, session, headers, tuple(protocols), options, observer, connect_timeout)
        )

    @classmethod
    async def _open(
        cls,
        url: str,
        session: aiohttp.ClientSession | None,
        headers: dict[str, str] | None,
        protocols: tuple[str, ...],
        options: Options,
        observer: Observer | None,
        connect_timeout: float,
    ) -> WebSocket:
        owned = session is None
        client = new_session() if session is None else session
        limit = client_max_msg_size.set(options.max_message_bytes + 1)
        try:
            async with asyncio.timeout(connect_timeout):
                raw = await client.ws_connect(
                    url,
                    headers=headers,
                    protocols=protocols or options.protocols,
                    autoclose=False,
                    autoping=False,
                    max_msg_size=options.max_message_bytes + 1,  # inclusive, see routing
                    compress=15 if options.compress else 0,
                    timeout=aiohttp.ClientWSTimeout(
                        ws_receive=None, ws_close=options.close_timeout
                    ),
                )
        except BaseException:
            if owned:
                await client.close()
            raise
        finally:
            client_max_msg_size.reset(limit)
        if isinstance(raw, DirectClientResponse):
            raw.adopt()
        ws = cls(raw, options, observer)
        if owned:
            ws._owned_session = client
        return ws


def new_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A client session whose WebSockets have the frame reader's fast path (see `run`)."""
    return aiohttp.ClientSession(ws_response_class=DirectClientResponse, **kwargs)


class Connecting:
    """What `WebSocket.connect` returns: await it, or use it as an async context manager."""

    __slots__ = ("_coro", "_ws")

    def __init__(self, coro: Awaitable[WebSocket]) -> None:
        self._coro = coro
        self._ws: WebSocket | None = None

    def __await__(self) -> Generator[Any, None, WebSocket]:
        return self._coro.__await__()

    async def __aenter__(self) -> WebSocket:
        self._ws = await self._coro
        return self._ws

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            await self._ws.close()
            await self._ws.wait_closed()
