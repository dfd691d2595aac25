"""echo: every message comes back to its sender, same type, same bytes."""

from __future__ import annotations

from aiohttp import web

from ..websocket import WebSocket
from .context import RouteContext, WebSocketHandler


def echo(ctx: RouteContext) -> WebSocketHandler:
    async def handler(request: web.Request, ws: WebSocket) -> None:
        async for data in ws:
            # Awaiting the send paces a client that writes faster than it reads (backpressure).
            await ws.send(data)

    return handler
