"""`Relaying`: the general path, any data frame relayed piece by piece as reads bring it.

Headers are checked (checks.py), control frames go to aiohttp's reader whole (reader.py), a
data frame's payload is unmasked, UTF-8-checked (text) and re-masked as its pieces come, and
the frame is written only once it is whole (output.py).
"""

from __future__ import annotations

from aiohttp import WSCloseCode
from aiohttp._websocket.helpers import websocket_mask

from .checks import HeaderChecks
from .frameformat import CLOSE, TEXT, Utf8Decoder
from .masking import own_keys, rotate_key, xor_keys
from .output import Output
from .reader import ReaderSide
from .state import NONE


class Relaying(ReaderSide, Output, HeaderChecks):
    """Frames split across reads, fragmented messages, long frames, control frames between
    fragments: what the fast paths leave."""

    __slots__ = ()

    def _relay(self, data: bytes, pos: int) -> tuple[bool, bytes]:
        """Forward the data frames in `data[pos:]`; control frames go to aiohttp's reader.

        A data frame is written only once it is whole (its pieces wait in `_frame_out`): a
        ping, or the close of either side, must never land inside a frame half written.
        """
        out: list[bytes | bytearray] = []
        size = len(data)
        messages = texts = payload_bytes = 0
        while pos < size:
            if self._left:
                step = min(self._left, size - pos)
                end = pos + step
                self._left -= step
                if self._control:
                    if self._feed_inner(data[pos:end]):
                        self._flush(out, texts, messages - texts, payload_bytes)
                        return True, b""
                elif not self._payload(data, pos, end):
                    return self._fail_after(out, texts, messages - texts, payload_bytes)
                pos = end
                if self._left:
                    break
                if self._control:
                    self._control = False
                    if self._frame_op == CLOSE:
                        self._stopped = True
                        self._flush(out, texts, messages - texts, payload_bytes)
                        if pos < size and self._feed_inner(data[pos:]):
                            return True, b""
                        return False, b""
                    continue
            else:
                header = self._header(data, pos)
                if header is None:
                    self._head = data[pos:]
                    break
                first, length, masked, header_size = header
                error = self._check(first, length, masked)
                if error is not None:
                    self._flush(out, texts, messages - texts, payload_bytes)
                    return self._fail(*error)
                if first & 0x0F >= 8:
                    self._control = True
                    self._frame_op = first & 0x0F
                    self._left = header_size + length
                    continue  # the whole frame, header included, goes to aiohttp's reader
                self._start_frame(data, pos, first, length, masked, header_size)
                pos += header_size
                self._left = length
                if length and pos < size:
                    continue
                if length or not self._payload(data, pos, pos):
                    if length:
                        break
                    return self._fail_after(out, texts, messages - texts, payload_bytes)
            # A data frame is whole.
            frame = self._frame_out
            assert frame is not None
            out.append(frame)
            self._frame_out = None
            payload_bytes += self._frame_size
            if self._message == NONE:
                messages += 1
                texts += self._frame_op == TEXT
        self._flush(out, texts, messages - texts, payload_bytes)
        return False, b""

    def _start_frame(
        self, data: bytes, pos: int, first: int, length: int, masked: bool, header_size: int
    ) -> None:
        """The header of a data frame, as it goes out; the message's state."""
        op = first & 0x0F
        if op:
            self._message = op
        self._frame_op = self._message
        self._message_size += length
        self._frame_size = length
        self._frame_offset = 0
        if masked:
            self._frame_key = data[pos + header_size - 4 : pos + header_size]
        if self._mask_out:  # a client's frame: the same header with wsrelay's key
            own = self._own_key = own_keys.next()
            out = bytearray(data[pos : pos + header_size - 4])
            out += own
        elif masked:  # an upstream that masks (aiohttp's reader accepted it): unmasked out
            out = bytearray(data[pos : pos + header_size - 4])
            out[1] &= 0x7F
        else:
            out = bytearray(data[pos : pos + header_size])
        self._frame_out = out
        if first & 0x80:
            self._message = -2  # the message ends with this frame

    def _payload(self, data: bytes, start: int, end: int) -> bool:
        """Payload bytes of the current data frame; False if a text message is not UTF-8."""
        out = self._frame_out
        assert out is not None
        last = not self._left and self._message == -2
        offset = self._frame_offset
        self._frame_offset += end - start
        if not self._frame_key:
            piece: bytes | bytearray = data[start:end]
            if self._frame_op == TEXT and not self._utf8(piece, last):
                return False
            out += piece
        else:
            chunk = bytearray(data[start:end])
            key = rotate_key(self._frame_key, offset)
            if self._frame_op == TEXT:
                websocket_mask(key, chunk)  # the plaintext, to check
                if not self._utf8(chunk, last):
                    return False
                if self._mask_out:
                    websocket_mask(rotate_key(self._own_key, offset), chunk)
            elif self._mask_out:  # one pass: unmasked with the client's key, masked with ours
                websocket_mask(xor_keys(key, rotate_key(self._own_key, offset)), chunk)
            else:
                websocket_mask(key, chunk)
            out += chunk
        if not self._left:
            self._frame_key = b""
            if last:
                self._message = NONE
                self._message_size = 0
                self._decoder = None
        return True

    def _utf8(self, piece: bytes | bytearray, last: bool) -> bool:
        """Check a piece of a text message; ASCII needs no decoder."""
        decoder = self._decoder
        if decoder is None:
            if piece.isascii():
                return True
            decoder = self._decoder = Utf8Decoder()
        try:
            decoder.decode(piece, last)
        except UnicodeDecodeError:
            return False
        return True

    def _fail_after(
        self, out: list[bytes | bytearray], texts: int, binaries: int, payload_bytes: int
    ) -> tuple[bool, bytes]:
        """A text message that is not UTF-8: what came before it goes out, then 1007."""
        self._flush(out, texts, binaries, payload_bytes)
        return self._fail(WSCloseCode.INVALID_TEXT, "Invalid UTF-8 text message")
