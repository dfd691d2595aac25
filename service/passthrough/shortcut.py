"""`Shortcut`: reads made only of whole data frames go from uvloop to the tap directly."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .tap import FrameTap

if TYPE_CHECKING:
    from ..websocket import WebSocket


class Shortcut(asyncio.Protocol):
    """In front of aiohttp's protocol on a relayed connection, on the socket's read path.

    A read made of whole data frames, arriving while the frame scanner (`front`) stands at a
    frame boundary and is not discarding, goes straight to the tap: it leaves the scanner at
    a boundary and holds no close frame, so the scanner has nothing to learn from it. Anything
    else, and whatever a read has left after its whole frames, takes aiohttp's protocol and
    the scanner as before. Everything but reads is aiohttp's protocol's, unchanged.
    """

    __slots__ = ("_front", "_protocol", "_scanner", "_tap")

    def __init__(self, protocol: Any, front: Any, tap: FrameTap) -> None:
        self._protocol = protocol
        self._front = front
        self._scanner = front.scanner
        self._tap = tap

    def data_received(self, data: bytes) -> None:
        scanner = self._scanner
        if not self._front.discarding and not scanner._skip and not scanner._head:
            taken = self._tap.shortcut(data)
            if taken == len(data):
                return
            if taken:
                data = data[taken:]
        self._protocol.data_received(data)

    def eof_received(self) -> bool | None:
        return self._protocol.eof_received()  # type: ignore[no-any-return]

    def connection_lost(self, exc: Exception | None) -> None:
        self._protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self._protocol.pause_writing()

    def resume_writing(self) -> None:
        self._protocol.resume_writing()


def install_shortcut(ws: WebSocket, tap: FrameTap) -> None:
    """Put a `Shortcut` in front of a plain TCP connection whose scanner supports it."""
    transport = ws.wire.transport
    protocol = transport.get_protocol()
    front = getattr(protocol, "_payload_parser", None)
    if (
        transport.get_extra_info("ssl_object") is None
        and hasattr(front, "scanner")
        and hasattr(front, "discarding")
    ):
        transport.set_protocol(Shortcut(protocol, front, tap))
