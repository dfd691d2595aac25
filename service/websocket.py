"""The seed's WebSocket API (Vapor's docs) in Python, for both server and client connections.

`send` writes the frame at once and returns a future (Vapor's promise): already done unless the
socket is over its high-water mark, so `ws.send(x)` without `await` is fine, and `await
ws.send(x)` adds backpressure. `on_text`/`on_binary`/`on_ping`/`on_pong` take plain or async
callbacks `(ws, data)`, run straight from the frame reader (reading.py); `async for data in ws`
yields `str` and `bytes`. `close()` returns a future; `on_close` completes with the close code
whichever side closed; `close_code` and `latency` are set as Vapor's `closeCode` and ping round
trip. Every close lingers until the peer has read it (closing.py); every byte goes out through
the connection's `wire` (wire.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from aiohttp import ClientWebSocketResponse, web

from . import closecodes, frames
from .closing import Closing
from .connecting import Connecting, new_session, open_client
from .keepalive import Action, Keepalive, KeepaliveScheduler
from .metrics import Traffic
from .perloop import PerLoop
from .reading import Callback, Data
from .wire import Wire

__all__ = ["DEFAULT_OPTIONS", "Connecting", "Data", "Observer", "Options", "WebSocket"]
__all__ += ["new_session"]

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
    #: How long a close may wait for the peer's answer (the lingering close, closing.py).
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


#: The `_LoopShared` of a loop, made on first use.
_loop_shared = PerLoop(_LoopShared).get


class WebSocket(Closing):
    """One open WebSocket connection, server or client side."""

    __slots__ = (
        "__weakref__",
        "_done",
        "_finished",
        "_loop",
        "_on_close",
        "_options",
        "_owned_session",
        "_ws",
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
        *,
        owned_session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._ws = ws
        #: The upgrade request of a server connection (None on the client side).
        self.request = request
        self._options = options
        self._loop = asyncio.get_running_loop()
        #: Every byte this connection writes goes through it (a subclass may be swapped in).
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
        #: What the reading task waits on while the frame reader hands messages over.
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
        self._owned_session = owned_session
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
        if self.wire.queue is not None:
            self.wire.queue.on_broken(self._broken, options.close_timeout)

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
        if self._closing:
            return self._failed(ConnectionResetError("the WebSocket is closed"))
        wire = self.wire
        # A queue already over the bound is a slow consumer; one message may take it past.
        if wire.queued() > self._options.send_queue_bytes:
            return self._slow_consumer()
        if wire.compressed:
            return wire.send_compressed(opcode, payload)
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
        wire = self.wire
        # The peer may be gone before this connection's reader has seen it: check the transport.
        if self._closing or wire.transport.is_closing():
            return False
        if wire.queued() > self._options.send_queue_bytes:
            self._slow_consumer()
            return False
        wire.write_frames(data)
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
        self._on_text = callback
        self._read_soon()

    def on_binary(self, callback: Callback[bytes]) -> None:
        """Call `callback(ws, data)` for every binary message."""
        self._on_binary = callback
        self._read_soon()

    def on_ping(self, callback: Callback[bytes]) -> None:
        """Call `callback(ws, payload)` for every ping (answered with a pong automatically)."""
        self._on_ping = callback
        self._read_soon()

    def on_pong(self, callback: Callback[bytes]) -> None:
        """Call `callback(ws, payload)` for every pong (keepalive pongs included)."""
        self._on_pong = callback
        self._read_soon()

    async def run(self) -> None:
        """Read until the connection closes, handing messages to the callbacks (reading.py)."""
        await self._read()

    def __aiter__(self) -> AsyncIterator[Data]:
        return self._messages()

    # -- closing -------------------------------------------------------------------------------
    def close(self, code: int = closecodes.NORMAL, reason: str = "") -> asyncio.Future[None]:
        """Start the closing handshake with `code`; the future completes when it is done."""
        if self._close_task is None:
            if self._closing:  # the link is gone
                return self._done
            self._closing = True
            self.close_code = code
            self._start_close(code, reason)
        assert self._close_task is not None
        return self._close_task

    def _fail(self) -> None:
        """A handler or callback failed: close with 1011."""
        self.close(closecodes.INTERNAL_ERROR, "internal error")

    def abort(self, code: int = closecodes.INTERNAL_ERROR, reason: str = "") -> None:
        """Drop the link at once: a close frame with `code` is attempted, 1006 is recorded."""
        if self._finished:
            return
        self._closing = True
        self.close_code = closecodes.ABNORMAL
        wire = self.wire
        if not wire.close_sent:
            with contextlib.suppress(ConnectionResetError):
                wire.write(frames.OP_CLOSE, frames.close_payload(code, reason))
        wire.end(abort=True)
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
        KeepaliveScheduler.discard(self)
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
        """Wait until the connection is fully over and return its close code.

        The peer's close frame is handled in order, after the messages before it are read: on a
        connection read with `async for` (no callbacks, no `run()`), keep reading or call
        `close()`, or this waits until the peer gives up on the handshake and drops the link.
        """
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
            open_client(
                cls, url, session, headers, tuple(protocols), options, observer, connect_timeout
            )
        )
