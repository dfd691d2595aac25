"""echo: every message comes back to its sender, same type, same bytes."""

from __future__ import annotations

import asyncio

from aiohttp import web

from ..websocket import Data, WebSocket
from .context import RouteContext, WebSocketHandler


def echo(ctx: RouteContext) -> WebSocketHandler:
    async def handler(request: web.Request, ws: WebSocket) -> None:
        # Vapor's style: callbacks, which run straight from the frame reader.
        ws.on_text(send_back)
        ws.on_binary(send_back)

    return handler


def send_back(ws: WebSocket, data: Data) -> asyncio.Future[None]:
    # Returning the send's future paces a client that writes faster than it reads.
    return ws.send(data)
