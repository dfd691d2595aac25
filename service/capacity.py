"""Connection caps for the process and for each route, checked before the upgrade.

A cap counts the open connections plus the handshakes under way, so concurrent handshakes
cannot overshoot it between the check and the upgrade.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from .middlewares import Handler, Middleware, refuse

RETRY_AFTER_SECONDS = "1"


class Capacity:
    """A limit on open connections, as counted by `live`, plus pending handshakes."""

    __slots__ = ("limit", "live", "pending")

    def __init__(self, limit: int, live: Callable[[], int]) -> None:
        self.limit = limit
        self.live = live
        self.pending = 0

    @property
    def full(self) -> bool:
        return self.live() + self.pending >= self.limit


def service_unavailable(request: web.Request, reason: str, text: str) -> web.HTTPException:
    """503 with Retry-After, tagged with `reason` (capacity or draining)."""
    return refuse(
        request,
        reason,
        web.HTTPServiceUnavailable(text=text, headers={"Retry-After": RETRY_AFTER_SECONDS}),
    )


def capacity_check(*caps: Capacity) -> Middleware:
    """Refuse with 503 when any of `caps` (process, route) is full."""

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if any(cap.full for cap in caps):
            raise service_unavailable(request, "capacity", "at capacity, try again later\n")
        for cap in caps:
            cap.pending += 1
        try:
            return await handler(request)  # the handshake: afterwards `live` counts it
        finally:
            for cap in caps:
                cap.pending -= 1

    return middleware
