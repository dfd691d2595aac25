"""Refuse handshakes with 503 while file descriptors run out, instead of failing at accept().

Every connection costs a descriptor (a proxied one two). When RLIMIT_NOFILE is reached the
event loop can no longer accept: new clients see their TCP connection dropped without an
answer, and the process cannot open anything else (an upstream, a log file). This guard keeps
`RESERVE` descriptors free: a handshake that would eat into them gets 503 with Retry-After
(counted as reason `capacity`), so clients back off and existing connections keep working.

Counting descriptors (/proc/self/fd) costs time proportional to their number, so the count
is refreshed at most once a second while far from the limit, and on every handshake near it;
between refreshes each accepted handshake adds one, so the estimate errs on the safe side.
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware as AppMiddleware

from .capacity import RETRY_AFTER_SECONDS
from .middlewares import Handler
from .ratelimit import count_refusal

#: Descriptors kept free for scrapes, upstream connects and the refusals themselves.
RESERVE = 32
_FD_DIR = "/proc/self/fd"


def soft_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def count_open() -> int:
    return len(os.listdir(_FD_DIR))


class FdBudget:
    """Whether one more connection fits under the descriptor limit, minus the reserve."""

    def __init__(
        self,
        reserve: int = RESERVE,
        limit: Callable[[], int] = soft_limit,
        count: Callable[[], int] = count_open,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reserve = reserve
        self._limit = limit
        self._count = count
        self._clock = clock
        self._open = 0
        self._read_at = float("-inf")
        self._ceiling = 0

    def admit(self) -> bool:
        """True (and counted) if a connection may be opened now."""
        now = self._clock()
        near = self._open >= self._ceiling - 4 * self.reserve
        if near or now - self._read_at >= 1.0:
            self._ceiling = self._limit()
            self._open = self._count()
            self._read_at = now
        if self._open + 1 > self._ceiling - self.reserve:
            return False
        self._open += 1
        return True


def fd_guard(budget: FdBudget, path_prefix: str = "") -> AppMiddleware:
    """The handshake middleware: 503 for a handshake the descriptor budget cannot take."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket" or budget.admit():
            return await handler(request)
        count_refusal(request, path_prefix, "capacity")
        raise web.HTTPServiceUnavailable(
            text="out of file descriptors, try again later\n",
            headers={hdrs.RETRY_AFTER: RETRY_AFTER_SECONDS},
        )

    return middleware


def guard(path_prefix: str = "") -> AppMiddleware | None:
    """The handshake middleware where /proc/self/fd exists (Linux), else None."""
    if os.path.isdir(_FD_DIR):
        return fd_guard(FdBudget(), path_prefix)
    return None
