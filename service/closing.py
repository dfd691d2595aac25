"""The closing handshake, written once for server, upstream and client connections.

A socket closed while the peer's bytes are still unread sends a TCP reset, and the reset can
destroy our close frame before the peer reads it: the peer sees "connection reset" and never
learns why (issue 13). So whoever starts a close here lingers, as RFC 6455 7.1.1 and the
`websockets` library do: write the close frame, then read and discard what the peer still sends
until its close frame (a server then ends TCP; a client waits for the server to end it) or
EOF. Nothing is parsed after our close frame: `FrameScanner` only steps over frame headers,
so a discarded upload costs one read buffer. A peer still sending after `close_timeout` is cut
(aborted), logged and counted in `CUTS` (`wsrelay_close_timeouts_total`).

`Inbound` sits in front of aiohttp's frame reader on both sides and takes over when a close
starts or when the reader meets a protocol error (1002, 1007, 1009), after which aiohttp's
reader is dead. Every byte written goes through the connection's `Wire`, close frames too.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WebSocketError, WSCloseCode

from . import closecodes, frames
from .reading import Reading

if TYPE_CHECKING:
    from .websocket import Options
    from .wire import Wire

log = logging.getLogger("wsrelay.closing")

#: Lingering closes cut at the timeout because the peer kept sending, by side (server, client).
CUTS: Counter[str] = Counter({"server": 0, "client": 0})

#: The reason sent with the close of a connection whose peer broke a rule.
REASONS = {
    closecodes.PROTOCOL_ERROR: "protocol error",
    closecodes.INVALID_PAYLOAD: "invalid UTF-8",
    closecodes.MESSAGE_TOO_BIG: "message too big",
}


class FrameScanner:
    """Steps over frame headers however the stream is cut into reads: a few integer operations
    per frame, no copy of the payload. It notes a frame that came unmasked and the peer's close
    frame (`peer_closed` once it has arrived whole)."""

    __slots__ = ("_head", "_skip", "close_seen")

    def __init__(self) -> None:
        self._skip = 0  # bytes of the current frame (mask key and payload) still to come
        self._head = b""  # the start of a frame header split across reads
        self.close_seen = False

    @property
    def peer_closed(self) -> bool:
        """The peer's close frame has been stepped over, payload and all."""
        return self.close_seen and self._skip == 0 and not self._head

    def scan(self, data: bytes) -> bool:
        """Step over the frames in `data`; False if one of them came unmasked."""
        masked = True
        size = len(data)
        pos = self._skip
        if self._head:
            data = self._head + data
            size = len(data)
            pos = 0
            self._head = b""
        while pos + 10 <= size or (pos + 2 <= size and data[pos + 1] & 0x7F < 126):
            second = data[pos + 1]
            if data[pos] & 0x0F == frames.OP_CLOSE:
                self.close_seen = True
            key = 4
            if second < 0x80:
                masked = False
                key = 0
            length = second & 0x7F
            if length < 126:
                pos += 2 + key + length
            elif length == 126:
                pos += 4 + key + (data[pos + 2] << 8 | data[pos + 3])
            else:
                pos += 10 + key + int.from_bytes(data[pos + 2 : pos + 10], "big")
        if pos < size:
            self._head = bytes(data[pos:])  # an incomplete header: wait for the rest
            self._skip = 0
        else:
            self._skip = pos - size
        return masked


class Inbound:
    """What the socket feeds instead of aiohttp's frame reader (`inner`), on either side.

    While the connection is open it scans each read (refusing unmasked frames with 1002 when
    `require_mask`, as RFC 6455 5.1 says a server must) and hands it to the reader. Once a
    close starts, or the reader has failed, it only scans and discards, and `wait` tells the
    closing handshake when the peer's close frame or EOF has come. It never reports an error
    to aiohttp's protocol, which would stop reading the socket.
    """

    __slots__ = ("_inner", "_queue", "_require_mask", "_waiter", "discarding", "eof", "scanner")

    def __init__(self, inner: Any, queue: Any, *, require_mask: bool) -> None:
        self._inner = inner
        self._queue = queue
        self._require_mask = require_mask
        self._waiter: asyncio.Future[None] | None = None
        self.scanner = FrameScanner()
        #: True once nothing more is parsed: a close has started or the reader failed.
        self.discarding = False
        self.eof = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self.discarding:
            self.scanner.scan(data)
            if self.scanner.close_seen:
                self._changed()
        elif not self.scanner.scan(data) and self._require_mask:
            self.discarding = True
            self._queue.set_exception(
                WebSocketError(WSCloseCode.PROTOCOL_ERROR, "client frames must be masked")
            )
        elif self._inner.feed_data(data)[0]:
            self.discarding = True  # the reader met a protocol error and told the queue
        return False, b""

    def feed_eof(self) -> None:
        self.eof = True
        self._inner.feed_eof()
        self._changed()

    def discard(self) -> None:
        """From now on every byte is only stepped over (a close has started)."""
        self.discarding = True

    def _changed(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self) -> None:
        """Until the next read or EOF that may end the handshake."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


def begin(wire: Wire, code: int, reason: str) -> bool | None:
    """Start a close: aiohttp's side is retired, reads are discarded, our close frame is
    written. False when the link is already gone (nothing to linger for); None when compressed
    frames are still being written: `linger` writes the close frame after them."""
    if wire.inbound is None:
        return True  # a client on a session without wsrelay's reader: aiohttp closes it
    wire.retire()
    wire.inbound.discard()
    if wire.pending_compressed() is not None:
        return None
    return write_close(wire, code, reason)


def write_close(wire: Wire, code: int, reason: str) -> bool:
    """Write our close frame; False when the link is already gone."""
    try:
        wire.write(frames.OP_CLOSE, frames.close_payload(code, reason))
    except ConnectionResetError:
        return False
    wire.close_sent = True
    return True


async def compressed_sent(wire: Wire) -> None:
    """Until the compressed frames sent before the close are written (see `begin`)."""
    sending = wire.pending_compressed()
    if sending is not None:
        await asyncio.wait((sending,))


async def close_after_compressed(wire: Wire, code: int, reason: str, timeout: float) -> bool:
    """Write our close frame once the compressed frames sent before it are written; False when
    the link is gone or a peer reading nothing kept them from being written in `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            await compressed_sent(wire)
    except TimeoutError:
        return False
    return write_close(wire, code, reason)


async def linger(
    wire: Wire, code: int, reason: str, *, client: bool, failed: bool, timeout: float
) -> None:
    """After `begin`: read and discard until the peer's close frame (a server) or the end of
    TCP (a client, RFC 6455 7.1.1), then end the link; past `timeout`, cut it and count it.

    A server that `failed` the connection (the peer broke the protocol or a limit, so its
    frames can no longer be trusted to be counted right) also half-closes TCP after its close
    frame, as `websockets` does: the peer reads the close frame, then EOF, and hangs up.
    """
    inbound = wire.inbound
    if inbound is None:
        try:
            async with asyncio.timeout(timeout):
                await compressed_sent(wire)
                await wire.aiohttp_close(code, reason)
        except (TimeoutError, ConnectionError, aiohttp.ClientError):
            wire.end(abort=True)
        return
    transport = wire.transport
    if not transport.is_closing():
        if not transport.is_reading():
            transport.resume_reading()  # paused by a full message queue nobody reads any more
        if failed and not client and transport.can_write_eof():
            transport.write_eof()
    scanner = inbound.scanner
    try:
        async with asyncio.timeout(timeout):
            while not (inbound.eof or (scanner.peer_closed and not client)):
                await inbound.wait()
    except TimeoutError:
        if not scanner.peer_closed:
            side = "client" if client else "server"
            CUTS[side] += 1
            log.warning(
                "close cut: the peer kept sending past the close timeout",
                extra={"event": "close_cut", "side": side, "timeout": timeout},
            )
            wire.end(abort=True)
            return
    wire.end(abort=False)


class Closing(Reading):
    """The closing half of `WebSocket`, the same on server, upstream and client connections:
    who started the close and with which code, and the task that lingers (`begin`, `linger`)."""

    __slots__ = ("_close_task", "_closing", "close_code", "closed_by_peer")

    if TYPE_CHECKING:
        close_code: int | None
        closed_by_peer: bool
        _closing: bool
        _close_task: asyncio.Task[None] | None
        _options: Options  # held by `WebSocket`

    def _start_close(self, code: int, reason: str, *, failed: bool = False) -> None:
        """Our close frame goes out now; the handshake lingers in a task (closing.py)."""
        sent = begin(self.wire, code, reason)
        self._close_task = asyncio.ensure_future(self._linger(sent, code, reason, failed))
        self._wake()  # the reading task stops: the close owns the socket now

    async def _linger(self, sent: bool | None, code: int, reason: str, failed: bool) -> None:
        try:
            if sent is None:  # compressed frames go first (see `begin`)
                sent = await close_after_compressed(
                    self.wire, code, reason, self._options.close_timeout
                )
            if sent:
                await linger(
                    self.wire,
                    code,
                    reason,
                    client=self.is_client,
                    failed=failed,
                    timeout=self._options.close_timeout,
                )
            else:
                self.wire.end(abort=True)
        finally:
            self._finish()

    def _peer_closed(self, code: int) -> None:
        """Answer a peer's close frame: echo a valid code, 1002 for one that is not."""
        self.closed_by_peer = True
        self._closing = True
        self.close_code = code or closecodes.NO_STATUS
        if self._close_task is None:
            self._start_close(closecodes.reply_code(code), "")

    def _broken(self, error: WebSocketError) -> None:
        """The peer broke the protocol or a limit (1002, 1007, 1009): close with that code."""
        if not self._closing:
            self._closing = True
            self.close_code = error.code
            self._start_close(error.code, REASONS.get(error.code, ""), failed=True)

    def _protocol_error(self, error: BaseException) -> None:
        """A protocol error aiohttp handled itself (a client on a foreign session)."""
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
