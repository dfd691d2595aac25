"""`HeaderChecks`: a relayed frame's header refused exactly as aiohttp's reader (or
wire.MaskGuard) would refuse it on the decoded path: same close code, same reason."""

from __future__ import annotations

from aiohttp import WSCloseCode

from .frameformat import KNOWN_OPCODES
from .state import NONE, TapState


class HeaderChecks(TapState):
    """Reserved bits, opcodes, masking, control frames, `max_message_bytes` counted over a
    fragmented message's frames (`_limit`, `_message_size`), and fragmentation order."""

    __slots__ = ()

    def _check(self, first: int, length: int, masked: bool) -> tuple[int, str] | None:
        """The error aiohttp's reader (or wire.MaskGuard) would raise for this header."""
        if first & 0x70:
            return WSCloseCode.PROTOCOL_ERROR, "Received frame with non-zero reserved bits"
        op = first & 0x0F
        if op not in KNOWN_OPCODES:
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
        if op == 0 and self._message == NONE:
            return WSCloseCode.PROTOCOL_ERROR, "Continuation frame for non started message"
        if op and self._message != NONE:
            return (
                WSCloseCode.PROTOCOL_ERROR,
                f"The opcode in non-fin frame is expected to be zero, got {op!r}",
            )
        return None
