"""Human names for WebSocket close codes, for what the tools print."""

from __future__ import annotations

_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received",
    1006: "abnormal closure (no close frame)",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake failure",
}


def describe_close(code: int | None, reason: str = "") -> str:
    """'1000 (normal closure)', with the peer's reason appended when it gave one."""
    if code is None:
        code = 1006
    if code in _NAMES:
        text = f"{code} ({_NAMES[code]})"
    elif 3000 <= code <= 3999:
        text = f"{code} (registered application code)"
    elif 4000 <= code <= 4999:
        text = f"{code} (private application code)"
    else:
        text = str(code)
    return f"{text}: {reason}" if reason else text
