"""An optional per-address limit on WebSocket handshakes (HANDSHAKE_RATE, HANDSHAKE_BURST).

A token bucket per client address: HANDSHAKE_BURST handshakes at once, refilled at
HANDSHAKE_RATE per second. Over it, the handshake gets 429 with Retry-After before any route
middleware runs, and is counted as `wsrelay_handshakes_rejected_total{reason="rate_limit"}`.
Only upgrade requests count: probes and scrapes of /healthz and /metrics are never limited.

The address is the TCP peer's. Behind a load balancer every client shares the balancer's
address, so there the limit belongs in the balancer (or is set per balancer address).
Memory is bounded: at most `max_addresses` buckets, the least recently used dropped first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware as AppMiddleware

from .keys import METRICS
from .middlewares import Handler

REASON = "rate_limit"


class HandshakeLimiter:
    """Token buckets keyed by address; `allow` takes one token or says how long to wait."""

    def __init__(
        self,
        rate: float,
        burst: int,
        max_addresses: int = 65536,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_addresses = max_addresses
        self._clock = clock
        #: address -> (tokens, time of the last update)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, address: str) -> float:
        """0.0 if a handshake from `address` may go ahead now, else the seconds until it may."""
        now = self._clock()
        tokens, last = self._buckets.pop(address, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.rate
        self._buckets[address] = (tokens, now)
        if len(self._buckets) > self.max_addresses:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


def count_refusal(request: web.Request, path_prefix: str, reason: str) -> None:
    """Count a guard's refusal under its route (guards run before the route's own counting)."""
    resource = request.match_info.route.resource
    template = resource.canonical.removeprefix(path_prefix) if resource else None
    metrics = request.app[METRICS]
    if metrics.enabled and template in metrics.routes:
        metrics.handshakes_rejected.labels(template, reason).inc()


def rate_limit(limiter: HandshakeLimiter, path_prefix: str = "") -> AppMiddleware:
    """The handshake middleware refusing handshakes over the limit with 429."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.headers.get(hdrs.UPGRADE, "").lower() != "websocket":
            return await handler(request)
        wait = limiter.allow(request.remote or "unknown")
        if not wait:
            return await handler(request)
        count_refusal(request, path_prefix, REASON)
        raise web.HTTPTooManyRequests(
            text="too many handshakes from this address, try again later\n",
            headers={hdrs.RETRY_AFTER: str(max(1, math.ceil(wait)))},
        )

    return middleware


def guard(rate: float, burst: int, path_prefix: str = "") -> AppMiddleware | None:
    """The handshake middleware when `rate` is set; 0 leaves the limit off (None)."""
    if rate > 0:
        return rate_limit(HandshakeLimiter(rate, burst), path_prefix)
    return None
