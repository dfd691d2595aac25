"""The byte level of an aiohttp WebSocket: its transport, frame reader, writer, flow control.

aiohttp's public send methods are coroutines; wsrelay writes frames synchronously so a send
can return a completed future (Vapor's promise) and a broadcast can write one encoded frame to
many sockets: every byte a connection writes goes through its `Wire`. aiohttp's public receive
wakes a task per message; wsrelay's `DirectQueue` hands messages to the callbacks from the frame
reader itself, and the socket feeds a `closing.Inbound` in front of that reader, so a close can
take over reading. This module is the only place that reaches below aiohttp's public API (pinned
to one minor release in pyproject.toml), so an upgrade has one file to check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol, Self

from aiohttp import ClientSession, ClientWebSocketResponse, WebSocketError, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import _EXC_SENTINEL, DEFAULT_CHUNK_SIZE
from aiohttp.http_websocket import WS_CLOSING_MESSAGE

from . import frames
from .closing import Inbound


class Sink(Protocol):
    """Who takes messages from a `DirectQueue` (a `WebSocket`)."""

    def _deliver(self, msg: Any) -> bool:
        """Take a parsed message from the frame reader, or return False to have it queued."""

    def _wake(self) -> None:
        """Something was queued, or the queue ended: the reading task has work."""


class DirectQueue(WebSocketDataQueue):
    """aiohttp's message queue with a way around it: while `sink` is set, the frame reader
    hands each message to it the moment it is parsed, so no task wakes up per message.

    What the sink declines (a close, data while its connection is busy) is queued as aiohttp
    always does and the sink is woken to read it; once anything is queued the rest follows
    it until the queue is empty again: nothing overtakes. The end of the stream (a lost
    link) wakes the sink too. A protocol error goes to `on_broken`'s callback instead: aiohttp's
    receive would answer it with a close of its own and drop the link at once. The messages
    queued before the error are read first (and may be answered), for `grace` seconds at most.
    """

    __slots__ = ("_broken", "_error", "_event_loop", "_grace", "_held", "sink")

    def __init__(self, protocol: Any, limit: int, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(protocol, limit, loop=loop)
        self._event_loop = loop  # aiohttp's compiled queue keeps its `_loop` out of reach
        self.sink: Sink | None = None
        self._broken: Callable[[WebSocketError], None] | None = None
        self._grace = 0.0
        self._error: WebSocketError | None = None
        #: An error behind queued messages, and the timer that stops waiting for them.
        self._held: tuple[WebSocketError, asyncio.TimerHandle] | None = None

    def on_broken(self, callback: Callable[[WebSocketError], None], grace: float) -> None:
        """Hand the reader's protocol errors (1002, 1007, 1009) to `callback`, which closes
        the connection, once the messages queued before it are read or `grace` has passed.
        The first error may have come with the handshake, before anyone listened."""
        self._broken = callback
        self._grace = grace
        if self._error is not None:
            self._fail_after_queued(self._error)

    def _fail_after_queued(self, error: WebSocketError) -> None:
        assert self._broken is not None
        if not self._buffer:
            self._broken(error)
            return
        self._held = (error, self._event_loop.call_later(self._grace, self._fail_now))
        if self.sink is not None:
            self.sink._wake()

    def _fail_now(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            error, timer = held
            timer.cancel()
            assert self._broken is not None  # set before anything is held
            self._broken(error)

    async def read(self) -> Any:
        if self._held is not None and not self._buffer:
            self._fail_now()  # what came before the error has been read: close now
        return await super().read()

    def feed_data(self, data: Any, size: int) -> None:
        sink = self.sink
        if sink is None:
            WebSocketDataQueue.feed_data(self, data, size)
        elif self._buffer or not sink._deliver(data):
            WebSocketDataQueue.feed_data(self, data, size)
            sink._wake()

    def idle(self) -> bool:
        """Nothing is queued for the reading task, and the stream has not ended."""
        return not self._buffer and not self.is_eof() and self._held is None

    def feed_eof(self) -> None:
        super().feed_eof()
        if self.sink is not None:
            self.sink._wake()

    def set_exception(self, exc: BaseException, exc_cause: BaseException = _EXC_SENTINEL) -> None:
        if isinstance(exc, WebSocketError):
            if self._broken is not None:
                self._fail_after_queued(exc)
            elif self._error is None:
                self._error = exc
            return
        super().set_exception(exc, exc_cause)
        if self.sink is not None:
            self.sink._wake()


class Wire:
    """Every byte a connection writes goes through here: frames written synchronously, the
    state of the write buffer, and the end of the link.

    The seam for per-connection behaviour (delays, drops, fragments, throttling): a subclass
    overriding `write` (every frame: data, ping, pong, close), `write_frames` (frames encoded
    once for many receivers) and `queued`, swapped in with `ws.wire = MyWire.like(ws.wire)`.
    """

    __slots__ = (
        "_protocol",
        "_writer",
        "close_sent",
        "compressed",
        "compressing",
        "inbound",
        "masked",
        "queue",
        "raw",
        "transport",
    )

    def __init__(self, ws: web.WebSocketResponse | ClientWebSocketResponse[Any]) -> None:
        writer = ws._writer
        if writer is None:
            raise RuntimeError("the WebSocket handshake has not completed")
        #: aiohttp's response (server) or client WebSocket this wire belongs to.
        self.raw = ws
        self._writer = writer
        self._protocol = writer.protocol
        self.transport: asyncio.Transport = writer.transport
        #: Client frames are masked per frame, so they cannot be shared between receivers.
        self.masked: bool = writer.use_mask
        #: permessage-deflate was negotiated: data frames go through aiohttp's compressor.
        self.compressed: bool = bool(writer.compress)
        queue = ws._reader
        #: The connection's message queue, when it has the reader's fast path (`DirectQueue`).
        self.queue = queue if isinstance(queue, DirectQueue) else None
        #: What reads the socket in front of aiohttp's reader (None: a foreign client session).
        self.inbound: Inbound | None = getattr(ws, "_inbound", None)
        #: Our close frame has been written (see closing.py).
        self.close_sent = False
        #: The last compressed send, which the next one and a close frame wait for.
        self.compressing: asyncio.Future[None] | None = None

    @classmethod
    def like(cls, wire: Wire) -> Self:
        """A `cls` over the same connection as `wire`: how a subclass is swapped in."""
        new = cls(wire.raw)
        new.close_sent = wire.close_sent
        new.compressing = wire.compressing
        return new

    def write(self, opcode: int, payload: bytes) -> bool:
        """Write one frame now; True if the transport is now over its high-water mark.

        Raises ConnectionResetError once the transport is closing.
        """
        if self.masked:
            self._writer._write_websocket_frame(payload, opcode, 0)
        elif self.transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        elif len(payload) > 16384:
            self.transport.write(frames.header(opcode, len(payload)))
            self.transport.write(payload)  # no copy of a large payload into a joined buffer
        else:
            self.transport.write(frames.encode(opcode, payload))
        return self._protocol._paused

    def write_frames(self, data: bytes) -> None:
        """Write whole frames encoded beforehand (a broadcast's, shared by its receivers)."""
        self.transport.write(data)

    def queued(self) -> int:
        """Bytes written but not sent yet: the send queue SEND_QUEUE_BYTES bounds."""
        return self.transport.get_write_buffer_size()

    def send_compressed(self, opcode: int, payload: bytes) -> asyncio.Future[None]:
        """Send a data frame of a compressed connection, after the ones sent before it.

        aiohttp compresses a frame over 16 KiB in an executor, and on Python 3.11 a smaller
        frame sent meanwhile, or a close frame, is written first. So each send here waits for
        the one before, and a close frame waits for the last (`compressing`).
        """
        previous = self.pending_compressed()
        sending = asyncio.ensure_future(self._send_after(previous, opcode, payload))
        sending.add_done_callback(_retrieve)
        self.compressing = sending
        return sending

    async def _send_after(
        self, previous: asyncio.Future[None] | None, opcode: int, payload: bytes
    ) -> None:
        if previous is not None:
            await asyncio.wait((previous,))  # its failure is its own sender's
        await self.compress(opcode, payload)

    async def compress(self, opcode: int, payload: bytes) -> None:
        """Write one data frame through aiohttp's stateful compressor."""
        await self._writer.send_frame(payload, opcode)

    def pending_compressed(self) -> asyncio.Future[None] | None:
        """The last compressed send while it is not written yet (None once it is): the next
        send and a close frame wait for it."""
        sending = self.compressing
        return sending if sending is not None and not sending.done() else None

    async def drain(self) -> None:
        """Wait until the transport is below its low-water mark again."""
        await self._protocol._drain_helper()

    # -- the end of the link (closing.py) ------------------------------------------------------
    def retire(self) -> None:
        """Tell aiohttp's response the connection is closed, so neither its close nor its
        write_eof writes a second close frame; a task parked in its receive wakes up."""
        raw = self.raw
        waiting = raw._waiting
        raw._set_closed()
        if waiting and raw._reader is not None:
            raw._reader.feed_data(WS_CLOSING_MESSAGE, 0)

    async def aiohttp_close(self, code: int, reason: str) -> None:
        """aiohttp's own closing handshake (a client on a session without `Inbound`)."""
        await self.raw.close(code=code, message=reason.encode()[:123])

    def end(self, *, abort: bool) -> None:
        """End the TCP connection: closed once written out, or aborted (a reset) at once."""
        if abort:
            self.transport.abort()
        else:
            self.transport.close()
        if isinstance(self.raw, ClientWebSocketResponse):
            self.raw._response.close()  # the session's bookkeeping of the connection


def _retrieve(sending: asyncio.Future[None]) -> None:
    """An ignored send failure is not an unhandled error (as an uncompressed send's)."""
    if not sending.cancelled():
        sending.exception()


class GuardedResponse(web.WebSocketResponse):
    """A server WebSocket response whose socket feeds an `Inbound` (it refuses unmasked client
    frames and takes over reading when a close starts) and whose reader feeds a `DirectQueue`:
    aiohttp's `_post_start`, with those parts swapped in."""

    _inbound: Inbound | None = None

    def _post_start(self, request: web.BaseRequest, protocol: str | None, writer: Any) -> None:
        self._ws_protocol = protocol
        self._writer = writer
        self._reset_heartbeat()
        assert self._loop is not None
        queue = DirectQueue(request._protocol, DEFAULT_CHUNK_SIZE, loop=self._loop)
        self._reader = queue
        self._parser = WebSocketReader(
            queue, self._max_msg_size, compress=bool(self._compress), decode_text=self._decode_text
        )
        received = None if self._heartbeat is None else self._on_data_received
        # The frames that came with the handshake go through the inbound scanner too.
        self._inbound = Inbound(self._parser, queue, require_mask=True)
        request.protocol.set_parser(self._inbound, data_received_cb=received)  # type: ignore[arg-type]
        request.protocol.keep_alive(False)


def adopt_session(session: ClientSession) -> None:
    """Open wsrelay's client WebSockets on a user's own session with the same reader and
    lingering close as on wsrelay's sessions. `DirectClientResponse` is aiohttp's class
    unchanged outside `WebSocket.connect`, so the session's other WebSockets do not change;
    a session with a WebSocket class of its own keeps it (and aiohttp's closing handshake)."""
    if session._ws_response_class is ClientWebSocketResponse:
        session._ws_response_class = DirectClientResponse


#: The frame size limit of the client connection being opened (see `DirectClientResponse`).
client_max_msg_size: ContextVar[int | None] = ContextVar("client_max_msg_size", default=None)


class DirectClientResponse(ClientWebSocketResponse):
    """A client WebSocket whose frame reader feeds a `DirectQueue`, behind an `Inbound`.

    aiohttp's session builds the queue and the reader itself (`ws_response_class` is the only
    hook). This class takes the queue's place in `__init__` and the reader's when the session
    hands it over, both before the first byte after the handshake is parsed; `adopt` then
    points connection-lost errors at the new queue. Used only while `client_max_msg_size` is
    set (by `WebSocket.connect`); otherwise it is aiohttp's class unchanged.
    """

    def __init__(self, reader: Any, writer: Any, *args: Any, **kwargs: Any) -> None:
        self._max_size = client_max_msg_size.get()
        if self._max_size is not None:
            loop = asyncio.get_running_loop()
            reader = DirectQueue(reader._protocol, DEFAULT_CHUNK_SIZE, loop=loop)
        self._own_parser: Any = None
        self._inbound: Inbound | None = None
        super().__init__(reader, writer, *args, **kwargs)

    @property
    def _parser(self) -> Any:
        return self._own_parser

    @_parser.setter
    def _parser(self, parser: Any) -> None:
        if parser is not None and self._max_size is not None:
            # The session's reader would feed the session's queue: ours feeds ours, behind
            # an `Inbound` that takes over reading when a close starts.
            reader = WebSocketReader(
                self._reader, self._max_size, compress=bool(self._compress), decode_text=True
            )
            parser = self._inbound = Inbound(reader, self._reader, require_mask=False)
        self._own_parser = parser

    def adopt(self) -> None:
        """After the connect: errors the connection meets go to this response's queue."""
        if self._max_size is not None and self._conn is not None:
            self._conn.protocol._payload = self._reader  # type: ignore[union-attr]
