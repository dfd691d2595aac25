"""RFC 6455 frame format as the tap reads it: opcodes, the header's layout, UTF-8.

Pure functions and constants, no connection state: the tap's modules import them by name
(one global lookup each, as when they lived beside the tap).
"""

from __future__ import annotations

import codecs

#: Opcodes of data frames (continuation, text, binary) and of control frames.
TEXT = 0x1
BINARY = 0x2
CLOSE = 0x8
KNOWN_OPCODES = frozenset((0x0, 0x1, 0x2, 0x8, 0x9, 0xA))
#: First bytes of a final, uncompressed text or binary frame.
FINAL_DATA = frozenset((0x81, 0x82))
Utf8Decoder = codecs.getincrementaldecoder("utf-8")


def valid_utf8(data: bytes | bytearray) -> bool:
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


def header(data: bytes, pos: int) -> tuple[int, int, bool, int] | None:
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
