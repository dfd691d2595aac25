"""`Shortcut`: reads made only of whole data frames go from uvloop to the tap directly."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .state import NONE
from .tap import FrameTap

assert NONE == 0  # `data_received` tests `tap._message` for NONE by its truth

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
        # The hot path of a relayed message: the tests stay inline (no call per read). The
        # scanner at a frame boundary and not discarding; the tap relaying, not stopped or
        # failed, and at a message boundary (`_message` is NONE, which is 0).
        scanner = self._scanner
        tap = self._tap
        if (
            tap._relaying
            and not (tap._stopped or tap._failed or tap._left or tap._head or tap._message)
            and not (self._front.discarding or scanner._skip or scanner._head)
        ):
            taken = tap._client_frames(data) if tap._mask_out else tap._upstream_frames(data)
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
