"""Close codes: the numbers wsrelay sends, how received codes are judged, and their metric labels.

Socket-free on purpose: the rules of RFC 6455 section 7.4 live here and are unit-tested alone.
"""

from __future__ import annotations

from collections.abc import Iterable

NORMAL = 1000
GOING_AWAY = 1001
PROTOCOL_ERROR = 1002
UNSUPPORTED_DATA = 1003
NO_STATUS = 1005
ABNORMAL = 1006
INVALID_PAYLOAD = 1007
POLICY_VIOLATION = 1008
MESSAGE_TOO_BIG = 1009
MANDATORY_EXTENSION = 1010
INTERNAL_ERROR = 1011
SERVICE_RESTART = 1012
TRY_AGAIN_LATER = 1013
BAD_GATEWAY = 1014
TLS_HANDSHAKE = 1015

#: Codes a peer may put in a close frame (RFC 6455 7.4.1 and the IANA registry).
_SENDABLE_REGISTERED = frozenset(range(1000, 1004)) | frozenset(range(1007, 1015))

#: Codes that only describe a close locally and must never appear on the wire.
RESERVED_LOCAL = frozenset({NO_STATUS, ABNORMAL, TLS_HANDSHAKE})


def is_sendable(code: int) -> bool:
    """True when `code` may appear in a close frame (registered or application range)."""
    return code in _SENDABLE_REGISTERED or 3000 <= code <= 4999


def reply_code(received: int | None) -> int:
    """The code to answer a peer's close frame with.

    A close without a status is answered 1000; a code that must not be sent on the wire (1005,
    1006, 1015, unassigned 1xxx, out of range) is a protocol error, answered 1002.
    Valid codes are echoed back, as RFC 6455 5.5.1 suggests.
    """
    if received is None or received == 0:
        return NORMAL
    return received if is_sendable(received) else PROTOCOL_ERROR


def relay_code(received: int | None) -> int:
    """The code a relay passes on: sendable codes unchanged, everything else becomes 1014.

    A relay must never turn an error into 1000: an upstream gone without a close frame (1006),
    one that sent no status (1005) or a TLS failure (1015) reaches the client as 1014.
    """
    if received is not None and is_sendable(received):
        return received
    return BAD_GATEWAY


def upstream_close_code(client_code: int | None) -> int:
    """The code a proxy closes the upstream with when its client's side has ended.

    Sendable codes pass unchanged. A client that closed without a status (1005) closed
    normally: 1000. A client gone without a close frame (1006, 1015, or none known) has gone
    away: 1001. Toward the client the rule is `relay_code`'s 1014 instead (SPEC.md).
    """
    if client_code is not None and is_sendable(client_code):
        return client_code
    if client_code == NO_STATUS:
        return NORMAL
    return GOING_AWAY


class CodeLabels:
    """Maps a close code to a bounded metric label value.

    1000-1015 and the operator's extra codes keep their number; the rest collapse into `3xxx`,
    `4xxx` or `other`, so a peer cannot create unbounded series.
    """

    __slots__ = ("_known",)

    def __init__(self, extra: Iterable[int] = ()) -> None:
        self._known = {code: str(code) for code in range(1000, 1016)}
        self._known.update({code: str(code) for code in extra})

    def __call__(self, code: int | None) -> str:
        if code is None:
            return str(ABNORMAL)
        label = self._known.get(code)
        if label is not None:
            return label
        if 3000 <= code <= 3999:
            return "3xxx"
        if 4000 <= code <= 4999:
            return "4xxx"
        return "other"
