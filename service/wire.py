"""The byte level of an aiohttp WebSocket: its transport, frame writer and flow control.

aiohttp's public send methods are coroutines; wsrelay writes frames synchronously so a send
can return a completed future (Vapor's promise) and a broadcast can write one encoded frame to
many sockets. This module is the only place that reaches below aiohttp's public API (pinned to
one minor release in pyproject.toml), so an upgrade has one file to check.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientWebSocketResponse, web

from . import frames


class Wire:
    """Synchronous frame writes on one connection, plus the state of its write buffer."""

    __slots__ = ("_protocol", "_writer", "compressed", "masked", "transport")

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

    def write(self, opcode: int, payload: bytes) -> None:
        """Write one frame now; raises ConnectionResetError once the transport is closing."""
        if self.masked:
            self._writer._write_websocket_frame(payload, opcode, 0)
        elif self.transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        elif len(payload) > 16384:
            self.transport.write(frames.header(opcode, len(payload)))
            self.transport.write(payload)  # no copy of a large payload into a joined buffer
        else:
            self.transport.write(frames.encode(opcode, payload))

    async def send_compressed(self, opcode: int, payload: bytes) -> None:
        """Data frames of a compressed connection go through aiohttp's stateful compressor."""
        await self._writer.send_frame(payload, opcode)

    def buffered(self) -> int:
        """Bytes written but not yet accepted by the kernel: the connection's send queue."""
        return self.transport.get_write_buffer_size()

    @property
    def paused(self) -> bool:
        """True while the transport is over its high-water mark."""
        return self._protocol._paused

    async def drain(self) -> None:
        """Wait until the transport is below its low-water mark again."""
        await self._protocol._drain_helper()
