"""broadcast: a message goes to every other member of the room, on every replica.

The room is the route's template plus the `{room}` path parameter, so two routes never share
rooms. Fan-out goes through the backplane: encoded once, written to each local member, and
carried to the other replicas when the backplane is replicated.
"""

from __future__ import annotations

from aiohttp import web

from .. import frames
from ..websocket import WebSocket
from .context import RouteContext, WebSocketHandler


def broadcast(ctx: RouteContext) -> WebSocketHandler:
    backplane = ctx.backplane
    template = ctx.route.path
    echo_to_sender = ctx.route.echo_to_sender
    publish = backplane.publish

    async def handler(request: web.Request, ws: WebSocket) -> None:
        room = f"{template}#{request.match_info.get('room', '')}"
        exclude = None if echo_to_sender else ws

        def on_text(_: WebSocket, text: str) -> None:
            publish(room, frames.OP_TEXT, text.encode(), exclude)

        def on_binary(_: WebSocket, data: bytes) -> None:
            publish(room, frames.OP_BINARY, data, exclude)

        ws.on_text(on_text)
        ws.on_binary(on_binary)
        backplane.join(room, ws)
        try:
            await ws.run()
        finally:
            backplane.leave(room, ws)

    return handler
