"""The byte level of an aiohttp WebSocket: its transport, frame reader, writer, flow control.

aiohttp's public send methods are coroutines; wsrelay writes frames synchronously so a send
can return a completed future (Vapor's promise) and a broadcast can write one encoded frame to
many sockets. aiohttp's public receive wakes a task per message; wsrelay's `DirectQueue` hands
messages to the callbacks from the frame reader itself. This module is the only place that
reaches below aiohttp's public API (pinned to one minor release in pyproject.toml), so an
upgrade has one file to check.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from typing import Any, Protocol

from aiohttp import ClientWebSocketResponse, WebSocketError, WSCloseCode, web
from aiohttp._websocket.reader import WebSocketDataQueue, WebSocketReader
from aiohttp.helpers import _EXC_SENTINEL, DEFAULT_CHUNK_SIZE

from . import frames


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
    link, a protocol error) wakes the sink too.
    """

    __slots__ = ("sink",)

    def __init__(self, protocol: Any, limit: int, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(protocol, limit, loop=loop)
        self.sink: Sink | None = None

    def feed_data(self, data: Any, size: int) -> None:
        sink = self.sink
        if sink is None:
            WebSocketDataQueue.feed_data(self, data, size)
        elif self._buffer or not sink._deliver(data):
            WebSocketDataQueue.feed_data(self, data, size)
            sink._wake()

    def idle(self) -> bool:
        """Nothing is queued for the reading task, and the stream has not ended."""
        return not self._buffer and not self.is_eof()

    def feed_eof(self) -> None:
        super().feed_eof()
        if self.sink is not None:
            self.sink._wake()

    def set_exception(self, exc: BaseException, exc_cause: BaseException = _EXC_SENTINEL) -> None:
        super().set_exception(exc, exc_cause)
        if self.sink is not None:
            self.sink._wake()


class Wire:
    """Synchronous frame writes on one connection, plus the state of its write buffer."""

    __slots__ = ("_protocol", "_writer", "compressed", "masked", "queue", "transport")

    def __init__(self, ws: web.WebSocketResponse | ClientWebSocketResponse[Any]) -> None:
        writer = ws._writer
        if writer is None:
            raise RuntimeError("the WebSocket handshake has not completed")
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

    async def send_compressed(self, opcode: int, payload: bytes) -> None:
        """Data frames of a compressed connection go through aiohttp's stateful compressor."""
        await self._writer.send_frame(payload, opcode)

    async def drain(self) -> None:
        """Wait until the transport is below its low-water mark again."""
        await self._protocol._drain_helper()


class MaskGuard:
    """Refuses unmasked client frames (RFC 6455 5.1: the server MUST close), which aiohttp's
    frame reader accepts. It sits in front of that reader and only steps over frame headers:
    a few integer operations per frame, no copy of the payload."""

    __slots__ = ("_head", "_inner", "_queue", "_refused", "_skip")

    def __init__(self, inner: Any, queue: Any) -> None:
        self._inner = inner
        self._queue = queue
        self._skip = 0  # bytes of the current frame (mask key and payload) still to come
        self._head = b""  # the start of a frame header split across reads
        self._refused = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._refused:
            return True, b""
        if self.scan(data):
            return self._inner.feed_data(data)  # type: ignore[no-any-return]
        return self.refuse()

    def refuse(self) -> tuple[bool, bytes]:
        """Fail the reader with 1002, as aiohttp's own reader does on a protocol error."""
        self._refused = True
        self._queue.set_exception(
            WebSocketError(WSCloseCode.PROTOCOL_ERROR, "client frames must be masked")
        )
        return True, b""

    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def scan(self, data: bytes) -> bool:
        """Step over the frames in `data`; False at the first unmasked one."""
        size = len(data)
        pos = self._skip
        if self._head:
            data = self._head + data
            size = len(data)
            pos = 0
            self._head = b""
        while pos + 10 <= size or (pos + 2 <= size and data[pos + 1] & 0x7F < 126):
            second = data[pos + 1]
            if second < 0x80:
                return False
            length = second & 0x7F
            if length < 126:
                pos += 6 + length
            elif length == 126:
                pos += 8 + (data[pos + 2] << 8 | data[pos + 3])
            else:
                pos += 14 + int.from_bytes(data[pos + 2 : pos + 10], "big")
        if pos < size:
            self._head = bytes(data[pos:])  # an incomplete header: wait for the rest
            self._skip = 0
        else:
            self._skip = pos - size
        return True


class GuardedResponse(web.WebSocketResponse):
    """A server WebSocket response whose reader refuses unmasked client frames and feeds a
    `DirectQueue`: aiohttp's `_post_start`, with those two parts swapped in."""

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
        # The frames that came with the handshake go through the guard too.
        guard = MaskGuard(self._parser, queue)
        request.protocol.set_parser(guard, data_received_cb=received)  # type: ignore[arg-type]
        request.protocol.keep_alive(False)

    async def close_unanswered(self, code: int, message: bytes) -> None:
        """Send the close frame, then end the TCP connection once it is written, without
        waiting for the peer's answer: what aiohttp's `close` does when a reading task is
        parked in `receive`, which a connection read through its `DirectQueue` is not."""
        if not self._closing:
            self._set_closing(code)  # type: ignore[arg-type]
        await self.close(code=code, message=message, drain=False)


#: The frame size limit of the client connection being opened (see `DirectClientResponse`).
client_max_msg_size: ContextVar[int | None] = ContextVar("client_max_msg_size", default=None)


class DirectClientResponse(ClientWebSocketResponse):
    """A client WebSocket whose frame reader feeds a `DirectQueue`.

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
        self._own_parser: WebSocketReader | None = None
        super().__init__(reader, writer, *args, **kwargs)

    @property
    def _parser(self) -> WebSocketReader | None:
        return self._own_parser

    @_parser.setter
    def _parser(self, parser: WebSocketReader | None) -> None:
        if parser is not None and self._max_size is not None:
            # The session's reader would feed the session's queue: ours feeds ours.
            parser = WebSocketReader(
                self._reader, self._max_size, compress=bool(self._compress), decode_text=True
            )
        self._own_parser = parser

    def adopt(self) -> None:
        """After the connect: errors the connection meets go to this response's queue."""
        if self._max_size is not None and self._conn is not None:
            self._conn.protocol._payload = self._reader  # type: ignore[union-attr]
