"""Graceful drain on SIGTERM/SIGINT: stop taking connections, then close the open ones.

The order is what load balancers need: /readyz turns 503 and new handshakes are refused at
once; after SHUTDOWN_DELAY the clients are closed with SHUTDOWN_CLOSE_CODE in batches spread
over SHUTDOWN_SPREAD, so their reconnects do not stampede the other replicas; whatever is
still open when SHUTDOWN_TIMEOUT nears is dropped, and the process exits 0.

SHUTDOWN_TIMEOUT bounds the whole drain, counted from the signal, the delay included (SPEC:
"seconds the whole drain may take"; Kubernetes' grace period and `docker stop -t` count the
same way). Delay and spread are each checked to be below the timeout when the settings load,
but together they may exceed it: then the timeout wins and the spread is cut to the time left
(`close_window`), so the process still exits in time, closes still come in batches and every
client still gets the close code. The cut is logged at start and at the drain.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Collection

from aiohttp import web

from .capacity import service_unavailable
from .middlewares import Handler, Middleware
from .websocket import WebSocket

log = logging.getLogger("wsrelay.drain")

#: Batches per second of spread: small enough to smooth reconnects, few enough to be cheap.
BATCHES_PER_SECOND = 10
#: Kept back from SHUTDOWN_TIMEOUT for closing the listener and the backplane.
CLEANUP_MARGIN = 0.5
#: Kept back after the last batch for its closing handshakes, when the spread has to be cut.
CLOSE_RESERVE = 0.5

REASONS = {1001: "server going away", 1012: "service restart"}


def batch_plan(count: int, spread: float) -> list[tuple[float, int, int]]:
    """(delay from the first close, start, end) of each batch of `count` connections."""
    if count == 0:
        return []
    batches = max(1, min(count, math.ceil(spread * BATCHES_PER_SECOND)))
    size = math.ceil(count / batches)
    starts = range(0, count, size)
    step = spread / len(starts) if spread else 0.0
    return [(index * step, start, min(start + size, count)) for index, start in enumerate(starts)]


def close_window(delay: float, spread: float, timeout: float) -> float:
    """Seconds the closes are spread over: `spread`, cut to fit the drain into `timeout`.

    The last batch goes out by `timeout` less CLEANUP_MARGIN and CLOSE_RESERVE, counted from the
    signal; when the delay leaves no room at all, everyone is closed at once after it.
    """
    room = timeout - CLEANUP_MARGIN - CLOSE_RESERVE - delay
    return max(0.0, min(spread, room))


class Drain:
    """The drain state of the process and the drain itself."""

    def __init__(self) -> None:
        self.draining = False

    def readiness(self) -> str | None:
        return "draining" if self.draining else None

    def middleware(self) -> Middleware:
        """Refuse new handshakes with 503 once draining has started."""

        async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            if self.draining:
                raise service_unavailable(request, "draining", "shutting down\n")
            return await handler(request)

        return middleware

    async def run(
        self,
        connections: Callable[[], Collection[WebSocket]],
        *,
        code: int,
        delay: float,
        spread: float,
        timeout: float,
    ) -> None:
        """Drain: refuse new connections, wait `delay`, close the open ones with `code`.

        Everything, the delay included, ends within `timeout` of the call (less CLEANUP_MARGIN,
        left for closing the listener and the backplane): the caller starts it on the signal.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout - CLEANUP_MARGIN)
        window = close_window(delay, spread, timeout)
        self.draining = True
        log.info(
            "drain started",
            extra={"event": "drain", "open": len(connections()), "delay": delay, "spread": window},
        )
        if window < spread:
            log.warning(
                "SHUTDOWN_SPREAD cut to fit SHUTDOWN_TIMEOUT",
                extra={"event": "drain", "spread": spread, "effective_spread": window},
            )
        # Delay < timeout is checked at start; within CLEANUP_MARGIN of it, the deadline wins.
        await asyncio.sleep(min(delay, max(0.0, deadline - loop.time())))
        open_now = list(connections())
        reason = REASONS.get(code, "")
        started = loop.time()
        for offset, start, end in batch_plan(len(open_now), window):
            await asyncio.sleep(max(0.0, started + offset - loop.time()))
            for ws in open_now[start:end]:
                ws.close(code, reason)
        waiting = [ws.on_close for ws in connections()]
        if waiting:
            await asyncio.wait(waiting, timeout=max(0.0, deadline - loop.time()))
        for ws in list(connections()):
            ws.abort(code, reason)
        log.info("drain finished", extra={"event": "drain", "closed": len(open_now)})
