"""`FastPaths`: the common case, whole, final, short data frames, relayed in one loop per read.

Everything else (a frame split across reads, a fragment, a control frame, a long client
frame, a header to refuse, a text that is not UTF-8) stops the loop where it stands and
takes the general path (relaying.py), which fails what must fail with aiohttp's codes.
"""

from __future__ import annotations

from aiohttp._websocket.helpers import websocket_mask

from .frameformat import FINAL_DATA, valid_utf8
from .masking import own_keys
from .output import Output


class FastPaths(Output):
    """Per-frame work here is the proxy benchmark's hot path: keep it to locals, the C mask
    routine and one `_flush` per read."""

    __slots__ = ()

    def _client_frames(self, data: bytes) -> int:
        """Re-mask and forward the whole single-frame messages under 126 bytes at the start
        of `data`; return where the general path takes over."""
        size = len(data)
        pos = 0
        out = bytearray()
        texts = binaries = payload_bytes = 0
        limit = self._limit
        keys = own_keys  # a local: looked up once per read, not per frame
        while pos + 6 <= size:
            first = data[pos]
            second = data[pos + 1]
            length = second - 0x80  # masked: the high bit is set, else this is negative
            end = pos + 6 + length
            if not 0 <= length < 126 or first not in FINAL_DATA or end > size or length >= limit:
                break
            own = keys.next()
            payload = bytearray(data[pos + 6 : end])
            # Two passes of the C routine cost less than (key ^ own) in Python at this size,
            # and a text needs its plaintext checked in between anyway.
            websocket_mask(data[pos + 2 : pos + 6], payload)
            if first == 0x81:
                if not payload.isascii() and not valid_utf8(payload):
                    break  # the general path fails it with 1007
                texts += 1
            else:
                binaries += 1
            websocket_mask(own, payload)
            out.append(first)
            out.append(second)
            out += own
            out += payload
            payload_bytes += length
            pos = end
        if pos:
            self._flush(out, texts, binaries, payload_bytes)
        return pos

    def _upstream_frames(self, data: bytes) -> int:
        """Forward the whole, final, unmasked frames at the start of `data` as they came;
        return where the general path takes over."""
        size = len(data)
        pos = 0
        texts = binaries = payload_bytes = 0
        limit = self._limit
        while pos + 2 <= size:
            first = data[pos]
            length = data[pos + 1]
            start = pos + 2
            if length == 126 and pos + 4 <= size:
                length = data[pos + 2] << 8 | data[pos + 3]
                start = pos + 4
            elif length > 125:
                break
            end = start + length
            if first not in FINAL_DATA or end > size or length >= limit:
                break
            if first == 0x81:
                piece = data[start:end]
                if not piece.isascii() and not valid_utf8(piece):
                    break  # the general path fails it with 1007
                texts += 1
            else:
                binaries += 1
            payload_bytes += length
            pos = end
        if pos:
            self._flush(data if pos == size else data[:pos], texts, binaries, payload_bytes)
        return pos
