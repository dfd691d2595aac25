"""Connection caps for the process and for each route, checked before the upgrade.

A slot is taken when the handshake passes the check and given back when the connection ends,
so concurrent handshakes cannot overshoot the cap between check and upgrade.
"""

from __future__ import annotations

from aiohttp import web

from .middlewares import Handler, Middleware, refuse

RETRY_AFTER_SECONDS = "1"


class Slots:
    """A counter with a limit."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    @property
    def full(self) -> bool:
        return self.used >= self.limit


def service_unavailable(request: web.Request, reason: str, text: str) -> web.HTTPException:
    """503 with Retry-After, tagged with `reason` (capacity or draining)."""
    return refuse(
        request,
        reason,
        web.HTTPServiceUnavailable(text=text, headers={"Retry-After": RETRY_AFTER_SECONDS}),
    )


def capacity_check(*pools: Slots) -> Middleware:
    """Refuse with 503 when any of `pools` (process, route) is full; hold a slot meanwhile."""

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(pool.full for pool in pools):
            raise service_unavailable(request, "capacity", "at capacity, try again later\n")
        for pool in pools:
            pool.used += 1
        try:
            return await handler(request)
        finally:
            for pool in pools:
                pool.used -= 1

    return middleware
