"""`FrameTap`: a connection's frames relayed to the other side undecoded (see the package).

It sits behind the connection's frame scanner and in front of aiohttp's reader: control
frames and everything before the first safe message boundary go to the reader as before
(handover.py); data frames after it are header-checked, counted, UTF-8-checked (text) and
written to the other side, re-masked with wsrelay's own key toward an upstream (fastpath.py,
relaying.py). This module holds what the outside calls: the parser interface aiohttp's
protocols use, `Shortcut`'s entry, and setting a tap up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fastpath import FastPaths
from .handover import Handover
from .state import NONE, UNKNOWN

if TYPE_CHECKING:
    from ..websocket import WebSocket


class FrameTap(Handover, FastPaths):
    """What a connection's frame scanner feeds instead of aiohttp's reader (`inner`, which
    feeds `queue`): it passes bytes on, or relays data frames once `relay` is called.

    `masked` says the peer is a client (its frames must be masked, RFC 6455 5.1).
    """

    __slots__ = ()

    @classmethod
    def behind(cls, front: Any, *, masked: bool) -> FrameTap:
        """A tap between a connection's frame scanner (`front`: it steps over every frame
        header from the first byte, and refuses unmasked client frames) and aiohttp's reader,
        from where the scanner stands. The scanner keeps scanning and feeding (now the tap)."""
        scanner = getattr(front, "scanner", front)
        tap = cls(front._inner, front._queue, masked=masked, left=scanner._skip,
                  head=scanner._head)  # fmt: skip
        tap._message = UNKNOWN  # the scanner does not track messages: wait for one to end
        front._inner = tap
        return tap

    def relay(self, src: WebSocket, dst: WebSocket, *, mask_out: bool) -> None:
        """From the next message boundary on, forward `src`'s data frames to `dst`."""
        self._src = src
        self._dst = dst
        self._mask_out = mask_out
        # aiohttp's inclusive-exclusive limit: a message of max_message_bytes + 1 is refused.
        self._limit = src._options.max_message_bytes + 1
        self._out = dst.wire.transport
        self._out_protocol = dst.wire._protocol
        self._queue_limit = dst._options.send_queue_bytes

    # -- the parser interface aiohttp's protocols call ----------------------------------------
    def feed_eof(self) -> None:
        self._inner.feed_eof()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if self._failed:
            return True, b""
        if self._head:
            data = self._head + data
            self._head = b""
        if self._relaying and not self._stopped:
            if self._left or self._message != NONE:
                return self._relay(data, 0)
            pos = self._client_frames(data) if self._mask_out else self._upstream_frames(data)
            if pos == len(data):
                return False, b""
            return self._relay(data, pos)
        return self._decoded(data)
