"""feed: one shared upstream connection per route, fanned out to every client of the route.

The route is a room on the app's backplane; each upstream message is encoded once and written
to every local client (`Backplane.deliver`, local only: each replica holds its own upstream
connection). Slow clients are closed with 1008 as in broadcast rooms. While the upstream is
down clients stay connected; with `"forward": true` their messages go upstream, and are
counted as dropped (`upstream_down`) while it is down.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..keys import POOL
from ..websocket import Data, WebSocket
from .context import RouteContext, WebSocketHandler


def feed(ctx: RouteContext) -> WebSocketHandler:
    backplane = ctx.backplane
    room = ctx.route.path  # broadcast rooms always hold "{room}#": no clash

    def deliver(opcode: int, payload: bytes) -> None:
        backplane.deliver(room, opcode, payload, None)

    source = ctx.app[POOL].feed(ctx.route, deliver)
    forward = ctx.route.forward
    dropped = ctx.metrics.dropped

    def to_upstream(_: WebSocket, data: Data) -> asyncio.Future[None] | None:
        pending = source.send(data)
        if pending is None:
            dropped("upstream_down")
        elif not pending.done():
            pending.add_done_callback(count_failure)
            return pending  # holds this client's next messages until the upstream drained
        return None

    def count_failure(pending: asyncio.Future[None]) -> None:
        if not pending.cancelled() and isinstance(pending.exception(), ConnectionError):
            dropped("upstream_down")

    async def handler(request: web.Request, ws: WebSocket) -> None:
        backplane.join(room, ws)
        if forward:
            ws.on_text(to_upstream)
            ws.on_binary(to_upstream)
        try:
            await ws.run()  # without `forward`, messages are counted and dropped
        finally:
            backplane.leave(room, ws)

    return handler
