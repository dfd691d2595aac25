"""Starlette on uvicorn (uvloop, its default WebSocket implementation): echo on every path.

Optional peer: the harness runs it when starlette and uvicorn are installed.
"""

from __future__ import annotations

import uvicorn
from _cli import parse_args
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket


async def echo(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await ws.send_text(message["text"])
        elif message.get("bytes") is not None:
            await ws.send_bytes(message["bytes"])


app = Starlette(routes=[WebSocketRoute("/echo", echo), WebSocketRoute("/{path:path}", echo)])

if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop" if args.loop == "uvloop" else "asyncio",
        log_level="warning",
        access_log=False,
    )
