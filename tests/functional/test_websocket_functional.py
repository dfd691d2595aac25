"""The WebSocket class against a real server: races a user meets in practice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from service.routing import RouteTable
from service.websocket import WebSocket

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def test_a_client_close_code_arrives_while_another_task_reads(
    aiohttp_server: ServerFactory,
) -> None:
    routes = RouteTable()
    received: list[int] = []
    ticking: list[asyncio.Future[None]] = []

    @routes.websocket("/ticks")
    async def ticks(request: web.Request, ws: WebSocket) -> None:
        async def tick() -> None:
            while not ws.closed:
                ws.send("tick")
                await asyncio.sleep(0.001)

        ws.on_close.add_done_callback(lambda closed: received.append(closed.result()))
        ticking.append(asyncio.ensure_future(tick()))
        # Returning keeps the connection open: the endpoint reads until the client closes.

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    for _ in range(5):
        ws = await WebSocket.connect(f"ws://127.0.0.1:{server.port}/ticks")

        async def read(ws: WebSocket = ws) -> None:
            async for _ in ws:
                pass

        reader = asyncio.ensure_future(read())
        await asyncio.sleep(0.02)  # messages are arriving while we close
        await ws.close(4001)
        await asyncio.wait_for(reader, 5)
        assert ws.close_code == 4001
    for _ in range(100):
        if len(received) == 5:
            break
        await asyncio.sleep(0.02)
    assert received == [4001] * 5
