"""`Handover`: before relaying, every byte goes to aiohttp's reader as on the decoded path;
the tap takes over at the first message boundary where nothing decoded is still queued."""

from __future__ import annotations

from aiohttp import WSCloseCode

from .frameformat import BINARY, CLOSE, TEXT
from .relaying import Relaying
from .state import NONE


class Handover(Relaying):
    """Steps over frame headers (tracking messages and close frames) while feeding the reader."""

    __slots__ = ()

    def _decoded(self, data: bytes) -> tuple[bool, bytes]:
        """Step over frames, feeding aiohttp's reader; switch to relaying where it may."""
        size = len(data)
        pos = 0
        fed = self._skip_fed
        self._skip_fed = 0
        while True:
            if self._left:
                step = min(self._left, size - pos)
                pos += step
                self._left -= step
                if self._left:
                    break
                self._frame_done()
            if self._dst is not None and not self._stopped and self._message == NONE and pos >= fed:
                if fed < pos and self._feed_inner(data[fed:pos]):
                    return True, b""
                if self._src_idle():
                    self._relaying = True
                    return self._relay(data, pos)
                fed = pos
            if pos >= size:
                break
            header = self._header(data, pos)
            if header is None:
                self._head = data[pos:]
                size = pos
                break
            first, length, masked, header_size = header
            if self._masked and not masked:
                if fed < pos and self._feed_inner(data[fed:pos]):
                    return True, b""
                return self._fail(WSCloseCode.PROTOCOL_ERROR, "client frames must be masked")
            op = first & 0x0F
            self._frame_op = op
            if op < 8 and first & 0x80:
                self._message = -2  # a message ends with this frame (see _frame_done)
            elif op in (TEXT, BINARY):
                self._message = op
            self._left = length
            pos += header_size
            if not length:
                self._frame_done()
        if fed < size and self._feed_inner(data[fed:size]):
            return True, b""
        return False, b""

    def _frame_done(self) -> None:
        if self._message == -2:
            self._message = NONE
        if self._frame_op == CLOSE:
            self._stopped = True

    def _src_idle(self) -> bool:
        """Nothing decoded is waiting on the sending side: relaying may start."""
        src = self._src
        assert src is not None
        queue = src.wire.queue
        return queue is not None and queue.idle() and src._pending is None and not src.closed
