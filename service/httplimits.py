"""What a client may send before the upgrade, how long it may take, and how its malformed
requests are logged.

aiohttp parses the request line and headers; these limits bound the memory one connection can
make it hold (an oversized request gets 400 before any handler runs) and the time it can hold
a descriptor without completing its handshake. aiohttp logs every such
parse error at ERROR with a traceback, as if the server had failed: `PeerErrorFilter` turns
those into one INFO line, so logs and alerts keep tracebacks for wsrelay's own faults.
"""

from __future__ import annotations

import logging
from typing import TypedDict

from aiohttp.http_exceptions import HttpProcessingError

#: aiohttp's own defaults, which the settings keep.
DEFAULT_MAX_REQUEST_LINE_BYTES = 8190
DEFAULT_MAX_HEADER_BYTES = 8190
DEFAULT_MAX_HEADERS = 128


DEFAULT_HANDSHAKE_TIMEOUT = 10.0


class HandlerLimits(TypedDict):
    """Keyword arguments of aiohttp's request handler (through `web.AppRunner`)."""

    max_line_size: int
    max_field_size: int
    max_headers: int
    keepalive_timeout: float


def handler_limits(
    request_line: int, header: int, headers: int, handshake_timeout: float
) -> HandlerLimits:
    """aiohttp's keep-alive timer also runs from the moment a connection is accepted until its
    first request is complete: a client that sends nothing, or half a request (slowloris), is
    dropped after `handshake_timeout`. Upgraded WebSocket connections are not affected."""
    return {
        "max_line_size": request_line,
        "max_field_size": header,
        "max_headers": headers,
        "keepalive_timeout": handshake_timeout,
    }


class PeerErrorFilter(logging.Filter):
    """Demote aiohttp's log of a request it could not parse (a 4xx) to one traceback-free line."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError) and 400 <= (error.code or 400) < 500:
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.msg = "bad request refused: %s (%s)"
            record.args = (type(error).__name__, peer)
            record.exc_info = None
            record.exc_text = None
            record.levelno = logging.INFO
            record.levelname = logging.getLevelName(logging.INFO)
        return True


def quiet_peer_errors() -> None:
    """Install `PeerErrorFilter` on aiohttp's server logger (idempotent)."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, PeerErrorFilter) for f in logger.filters):
        logger.addFilter(PeerErrorFilter())
