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
    routine and one `_emit` per read."""

    __slots__ = ()

    def _client_frames(self, data: bytes) -> int:
        """Re-mask and forward the whole single-frame messages under 126 bytes at the start
        of `data`; return where the general path takes over.

        Each frame is copied whole and XORed from its first byte with four fresh random bytes
        `r` of wsrelay's: its mask key becomes (client key ^ r), which the client cannot know,
        and its payload is masked with that key, in one pass of the C routine (the key and the
        payload are both XORed with `r` at the same phase); the two header bytes before them
        are written back. A text is first unmasked in place the same way with the client's
        key (its key bytes become 0), so that its plaintext is checked, then XORed with `r`.
        """
        size = len(data)
        pos = 0
        out: bytearray | None = None
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
            frame = bytearray(data[pos:end])
            if first == 0x81:
                # The client's key as seen from the frame's first byte (two bytes before it).
                websocket_mask(data[pos + 4 : pos + 6] + data[pos + 2 : pos + 4], frame)
                frame[0] = frame[1] = 0  # the rest is 4 zero bytes and the plaintext
                if not frame.isascii() and not valid_utf8(frame[6:]):
                    break  # the general path fails it with 1007
                texts += 1
            else:
                binaries += 1
            websocket_mask(keys.next(), frame)
            frame[0] = first
            frame[1] = second
            if out is None:
                out = frame
            else:
                out += frame
            payload_bytes += length
            pos = end
        if out is not None:
            self._emit(out, texts, binaries, payload_bytes)
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
            self._emit(data if pos == size else data[:pos], texts, binaries, payload_bytes)
        return pos
