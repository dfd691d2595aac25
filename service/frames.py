"""Server-side (unmasked) frame encoding, so one message is encoded once for many receivers.

RFC 6455 5.2: FIN + opcode, then a 7/16/64-bit payload length. Server frames carry no mask,
so the bytes are identical for every receiver of a broadcast.
"""

from __future__ import annotations

import struct
from typing import Final

OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

_LEN16 = struct.Struct("!BBH").pack
_LEN64 = struct.Struct("!BBQ").pack
_CLOSE_CODE = struct.Struct("!H").pack


def header(opcode: int, length: int) -> bytes:
    """The frame header of a final, uncompressed, unmasked frame."""
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return _LEN16(first, 126, length)
    return _LEN64(first, 127, length)


def encode(opcode: int, payload: bytes) -> bytes:
    """A whole frame: header and payload in one buffer, ready for `transport.write`."""
    length = len(payload)
    if length < 126:  # the common case, without a second call
        return bytes((0x80 | opcode, length)) + payload
    return header(opcode, length) + payload


def close_payload(code: int, reason: str = "") -> bytes:
    """The payload of a close frame; the reason is cut to fit a control frame (125 bytes)."""
    return _CLOSE_CODE(code) + reason.encode()[:123]
