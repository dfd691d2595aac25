"""wsrelay's own masking keys for the frames it relays upstream (RFC 6455 10.3: never the
client's), and the key arithmetic of re-masking a payload in one pass."""

from __future__ import annotations

import os


class MaskKeys:
    """wsrelay's own masking keys: from the OS's random source, 1,024 keys per read."""

    __slots__ = ("_buffer", "_pos")

    def __init__(self) -> None:
        self._buffer = b""
        self._pos = 0

    def next(self) -> bytes:
        pos = self._pos
        if pos >= len(self._buffer):
            self._buffer = os.urandom(4096)
            pos = 0
        self._pos = pos + 4
        return self._buffer[pos : pos + 4]


own_keys = MaskKeys()


def xor_keys(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "little") ^ int.from_bytes(b, "little")).to_bytes(4, "little")


def rotate_key(key: bytes, offset: int) -> bytes:
    """The key as seen from `offset` bytes into a payload (a frame split across reads)."""
    shift = offset & 3
    return key if not shift else key[shift:] + key[:shift]
