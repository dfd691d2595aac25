"""`ReaderSide`: what a tap hands to aiohttp's reader, bytes or the failure of the connection."""

from __future__ import annotations

from aiohttp import WebSocketError

from .state import TapState


class ReaderSide(TapState):
    """Control frames and everything the tap does not relay go to aiohttp's reader
    (`_inner`); a protocol error fails the sending side through the reader's queue."""

    __slots__ = ()

    def _feed_inner(self, data: bytes) -> bool:
        """Hand bytes to aiohttp's reader; True if it failed the connection."""
        failed, _ = self._inner.feed_data(data)
        if failed:
            self._failed = True
        return bool(failed)

    def _fail(self, code: int, reason: str) -> tuple[bool, bytes]:
        """Fail the sending side as aiohttp's reader does on a protocol error."""
        self._failed = True
        self._queue.set_exception(WebSocketError(code, reason))
        return True, b""
