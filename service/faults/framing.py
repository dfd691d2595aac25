"""Frames of a faulted connection's output: found in pre-encoded bytes, and fragmented.

What a server connection writes is a stream of whole, unmasked frames (`service.frames`), but a
buffer may hold several (a broadcast's joined frames) or half of one (a large frame's header and
payload are written apart). `FrameScanner` finds the frames in what it is fed, keeping at most
one unfinished frame. `fragment` re-encodes one message as a first frame and continuation
frames (RFC 6455 5.4), keeping the first frame's RSV bits (permessage-deflate's RSV1).
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import frames

OP_CONTINUATION = 0x0
FIN = 0x80


class FrameScanner:
    """Splits a stream of unmasked frames into (first byte, payload) pairs."""

    __slots__ = ("_rest",)

    def __init__(self) -> None:
        self._rest = b""  # the start of a frame not complete yet

    @property
    def pending(self) -> int:
        """Bytes held for a frame that is not complete yet."""
        return len(self._rest)

    def feed(self, data: bytes) -> Iterator[tuple[int, bytes]]:
        """The complete frames in what came so far, in order."""
        if self._rest:
            data = self._rest + data
            self._rest = b""
        view = memoryview(data)
        size = len(data)
        pos = 0
        while size - pos >= 2:
            second = data[pos + 1]
            length = second & 0x7F
            start = pos + 2
            if length == 126:
                if size - pos < 4:
                    break
                length = data[pos + 2] << 8 | data[pos + 3]
                start = pos + 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(data[pos + 2 : pos + 10], "big")
                start = pos + 10
            end = start + length
            if end > size:
                break
            yield data[pos], bytes(view[start:end])
            pos = end
        if pos < size:
            self._rest = bytes(view[pos:])


def fragment(first: int, payload: bytes, size: int) -> list[bytes]:
    """One message as frames of at most `size` payload bytes each; whole if it fits one."""
    if len(payload) <= size:
        return [frames.header(first & 0x7F, len(payload)) + payload]
    # frames.header sets FIN; the first and middle frames clear it.
    head = first & 0x7F  # RSV bits and opcode
    out = []
    for pos in range(0, len(payload), size):
        piece = payload[pos : pos + size]
        last = pos + size >= len(payload)
        opcode = head if pos == 0 else OP_CONTINUATION
        header = bytearray(frames.header(opcode, len(piece)))
        if not last:
            header[0] &= 0x7F
        out.append(bytes(header) + piece)
    return out


def frame_bytes(first: int, payload: bytes) -> bytes:
    """A whole frame with this first byte (FIN, RSV bits, opcode)."""
    header = bytearray(frames.header(first & 0x7F, len(payload)))
    header[0] = first
    return bytes(header) + payload
