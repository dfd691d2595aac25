"""`FrameTap`: a connection's frames relayed to the other side undecoded (see the package).

It sits behind the connection's frame scanner and in front of aiohttp's reader: control
frames and everything before the first safe message boundary go to the reader as before;
data frames after it are header-checked, counted, UTF-8-checked (text) and written to the
other side, re-masked with wsrelay's own key toward an upstream.
"""

from __future__ import annotations

import asyncio
import codecs
from typing import TYPE_CHECKING, Any

from aiohttp import WebSocketError, WSCloseCode
from aiohttp._websocket.helpers import websocket_mask

from .masking import own_keys, rotate_key, xor_keys

if TYPE_CHECKING:
    from ..websocket import WebSocket

#: Opcodes of data frames (continuation, text, binary) and of control frames.
_TEXT = 0x1
_BINARY = 0x2
_CLOSE = 0x8
_KNOWN_OPCODES = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))
#: `_message`: no message in progress, or not known yet (a tap that took over mid-stream).
_NONE = 0
_UNKNOWN = -1
_Utf8Decoder = codecs.getincrementaldecoder("utf-8")
#: First bytes of a final, uncompressed text or binary frame.
_FINAL_DATA = frozenset((0x81, 0x82))


def _valid_utf8(data: bytes | bytearray) -> bool:
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


class FrameTap:
    """What a connection's frame scanner feeds instead of aiohttp's reader (`inner`, which
    feeds `queue`): it passes bytes on, or relays data frames once `relay` is called.

    `masked` says the peer is a client (its frames must be masked, RFC 6455 5.1).
    """

    __slots__ = (
        "_control",
        "_decoder",
        "_dst",
        "_failed",
        "_frame_key",
        "_frame_offset",
        "_frame_op",
        "_frame_out",
        "_frame_size",
        "_head",
        "_inner",
        "_left",
        "_limit",
        "_mask_out",
        "_masked",
        "_message",
        "_message_size",
        "_own_key",
        "_paused",
        "_queue",
        "_relaying",
        "_skip_fed",
        "_src",
        "_stopped",
    )

    def __init__(
        self, inner: Any, queue: Any, *, masked: bool, left: int = 0, head: bytes = b""
    ) -> None:
        self._inner = inner
        self._queue = queue
        self._masked = masked
        #: Payload bytes of the current frame still to come; a split header waits in `_head`.
        self._left = left
        self._head = head
        #: Leading bytes of `_head` that aiohttp's reader has already had (see `behind`).
        self._skip_fed = len(head)
        #: A tap that starts mid-stream does not know whether a fragmented message is open.
        self._message = _UNKNOWN if left or head else _NONE
        self._message_size = 0
        self._control = False  # the current frame is a control frame (it goes to `inner`)
        self._frame_op = 0
        self._frame_key = b""  # the sender's mask key of the current frame
        self._own_key = b""  # the key the current frame is re-masked with
        self._frame_offset = 0
        self._frame_size = 0
        #: The current data frame as it goes out, written once it is whole.
        self._frame_out: bytearray | None = None
        self._decoder: codecs.IncrementalDecoder | None = None
        self._failed = False
        self._src: WebSocket | None = None
        self._dst: WebSocket | None = None
        self._limit = 0
        self._mask_out = False
        self._relaying = False
        self._stopped = False  # after a close frame: the decoded path for good
        self._paused = False

    @classmethod
    def behind(cls, front: Any, *, masked: bool) -> FrameTap:
        """A tap between a connection's frame scanner (`front`: it steps over every frame
        header from the first byte, and refuses unmasked client frames) and aiohttp's reader,
        from where the scanner stands. The scanner keeps scanning and feeding (now the tap)."""
        scanner = getattr(front, "scanner", front)
        tap = cls(front._inner, front._queue, masked=masked, left=scanner._skip,
                  head=scanner._head)  # fmt: skip
        tap._message = _UNKNOWN  # the scanner does not track messages: wait for one to end
        front._inner = tap
        return tap

    def relay(self, src: WebSocket, dst: WebSocket, *, mask_out: bool) -> None:
        """From the next message boundary on, forward `src`'s data frames to `dst`."""
        self._src = src
        self._dst = dst
        self._mask_out = mask_out
        # aiohttp's inclusive-exclusive limit: a message of max_message_bytes + 1 is refused.
        self._limit = src._options.max_message_bytes + 1

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
            if self._left or self._message != _NONE:
                return self._relay(data, 0)
            pos = self._client_frames(data) if self._mask_out else self._upstream_frames(data)
            if pos == len(data):
                return False, b""
            return self._relay(data, pos)
        return self._decoded(data)

    def shortcut(self, data: bytes) -> int:
        """Relay the whole data frames at the start of `data` if this tap is relaying and at a
        message boundary; return how many bytes that took (0: none, `data` goes the long way)."""
        if (
            not self._relaying
            or self._stopped
            or self._failed
            or self._left
            or self._head
            or self._message != _NONE
        ):
            return 0
        return self._client_frames(data) if self._mask_out else self._upstream_frames(data)

    # -- the fast paths: whole, final, short frames, the common case --------------------------
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
            if not 0 <= length < 126 or first not in _FINAL_DATA or end > size or length >= limit:
                break
            own = keys.next()
            payload = bytearray(data[pos + 6 : end])
            # Two passes of the C routine cost less than (key ^ own) in Python at this size,
            # and a text needs its plaintext checked in between anyway.
            websocket_mask(data[pos + 2 : pos + 6], payload)
            if first == 0x81:
                if not payload.isascii() and not _valid_utf8(payload):
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
            if first not in _FINAL_DATA or end > size or length >= limit:
                break
            if first == 0x81:
                piece = data[start:end]
                if not piece.isascii() and not _valid_utf8(piece):
                    break  # the general path fails it with 1007
                texts += 1
            else:
                binaries += 1
            payload_bytes += length
            pos = end
        if pos:
            self._flush(data if pos == size else data[:pos], texts, binaries, payload_bytes)
        return pos

    # -- the decoded path ---------------------------------------------------------------------
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
            if (
                self._dst is not None
                and not self._stopped
                and self._message == _NONE
                and pos >= fed
            ):
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
            elif op in (_TEXT, _BINARY):
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
            self._message = _NONE
        if self._frame_op == _CLOSE:
            self._stopped = True

    def _src_idle(self) -> bool:
        src = self._src
        assert src is not None
        queue = src.wire.queue
        return queue is not None and queue.idle() and src._pending is None and not src.closed

    def _feed_inner(self, data: bytes) -> bool:
        """Hand bytes to aiohttp's reader; True if it failed the connection."""
        failed, _ = self._inner.feed_data(data)
        if failed:
            self._failed = True
        return bool(failed)

    @staticmethod
    def _header(data: bytes, pos: int) -> tuple[int, int, bool, int] | None:
        """(first byte, payload length, masked, header size) of the frame at `pos`, or None
        while the header is incomplete."""
        available = len(data) - pos
        if available < 2:
            return None
        second = data[pos + 1]
        masked = second >= 0x80
        length = second & 0x7F
        size = 6 if masked else 2
        if length == 126:
            size += 2
            if available < size:
                return None
            length = data[pos + 2] << 8 | data[pos + 3]
        elif length == 127:
            size += 8
            if available < size:
                return None
            length = int.from_bytes(data[pos + 2 : pos + 10], "big")
        elif available < size:
            return None
        return data[pos], length, masked, size

    # -- relaying -----------------------------------------------------------------------------
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
                    if self._frame_op == _CLOSE:
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
            if self._message == _NONE:
                messages += 1
                texts += self._frame_op == _TEXT
        self._flush(out, texts, messages - texts, payload_bytes)
        return False, b""

    def _check(self, first: int, length: int, masked: bool) -> tuple[int, str] | None:
        """The error aiohttp's reader (or wire.MaskGuard) would raise for this header."""
        if first & 0x70:
            return WSCloseCode.PROTOCOL_ERROR, "Received frame with non-zero reserved bits"
        op = first & 0x0F
        if op not in _KNOWN_OPCODES:
            return WSCloseCode.PROTOCOL_ERROR, f"Unexpected opcode={op!r}"
        if self._masked and not masked:
            return WSCloseCode.PROTOCOL_ERROR, "client frames must be masked"
        if op >= 8:
            if not first & 0x80:
                return WSCloseCode.PROTOCOL_ERROR, "Received fragmented control frame"
            if length > 125:
                return (
                    WSCloseCode.PROTOCOL_ERROR,
                    "Control frame payload cannot be larger than 125 bytes",
                )
            return None
        if length >= self._limit - self._message_size:
            return (
                WSCloseCode.MESSAGE_TOO_BIG,
                f"Message size {length + self._message_size} exceeds limit {self._limit}",
            )
        if op == 0 and self._message == _NONE:
            return WSCloseCode.PROTOCOL_ERROR, "Continuation frame for non started message"
        if op and self._message != _NONE:
            return (
                WSCloseCode.PROTOCOL_ERROR,
                f"The opcode in non-fin frame is expected to be zero, got {op!r}",
            )
        return None

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
            if self._frame_op == _TEXT and not self._utf8(piece, last):
                return False
            out += piece
        else:
            chunk = bytearray(data[start:end])
            key = rotate_key(self._frame_key, offset)
            if self._frame_op == _TEXT:
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
                self._message = _NONE
                self._message_size = 0
                self._decoder = None
        return True

    def _utf8(self, piece: bytes | bytearray, last: bool) -> bool:
        """Check a piece of a text message; ASCII needs no decoder."""
        decoder = self._decoder
        if decoder is None:
            if piece.isascii():
                return True
            decoder = self._decoder = _Utf8Decoder()
        try:
            decoder.decode(piece, last)
        except UnicodeDecodeError:
            return False
        return True

    def _flush(
        self,
        out: bytes | bytearray | list[bytes | bytearray],
        texts: int,
        binaries: int,
        payload_bytes: int,
    ) -> None:
        """Write what the chunk forwarded in one write, count it on both sides, and pause the
        sender while the receiver is over its high-water mark."""
        src, dst = self._src, self._dst
        assert src is not None
        assert dst is not None
        if src._closing:  # this side's close has started: nothing more is relayed
            return
        traffic = src.traffic
        traffic.in_text += texts
        traffic.in_binary += binaries
        traffic.bytes_in += payload_bytes
        if not out:
            return
        if isinstance(out, list):
            out = out[0] if len(out) == 1 else b"".join(out)
        if not isinstance(out, bytes):
            out = bytes(out)  # what a receiver's Wire writes (and may hold on to)
        if dst.send_frames(out, texts, binaries, payload_bytes) and dst.wire._protocol._paused:
            self._pause()  # the receiver is over its high-water mark

    def _fail_after(
        self, out: list[bytes | bytearray], texts: int, binaries: int, payload_bytes: int
    ) -> tuple[bool, bytes]:
        """A text message that is not UTF-8: what came before it goes out, then 1007."""
        self._flush(out, texts, binaries, payload_bytes)
        return self._fail(WSCloseCode.INVALID_TEXT, "Invalid UTF-8 text message")

    def _fail(self, code: int, reason: str) -> tuple[bool, bytes]:
        """Fail the sending side as aiohttp's reader does on a protocol error."""
        self._failed = True
        self._queue.set_exception(WebSocketError(code, reason))
        return True, b""

    def _pause(self) -> None:
        """The receiver is over its high-water mark: stop reading the sender until it drains."""
        if self._paused:
            return
        src, dst = self._src, self._dst
        assert src is not None
        assert dst is not None
        self._paused = True
        src.wire.transport.pause_reading()
        drained = asyncio.ensure_future(dst.wire.drain())
        drained.add_done_callback(self._resume)

    def _resume(self, drained: asyncio.Future[None]) -> None:
        self._paused = False
        if not drained.cancelled():
            drained.exception()  # a receiver gone: its close ends the proxy
        assert self._src is not None
        transport = self._src.wire.transport
        if not transport.is_closing():
            transport.resume_reading()
