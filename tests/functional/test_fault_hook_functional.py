"""Which connections take the fault path, and what a faulted connection costs the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from service.faults import FAULTS_KEY, Faults
from service.faults.hook import FaultyWebSocket, FaultyWire
from service.middlewares import Handler
from service.routing import RouteTable
from service.websocket import WebSocket
from service.wire import Wire

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def with_faults(faults: Faults) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request[FAULTS_KEY] = faults
        return await handler(request)

    return middleware


async def serve(aiohttp_server: ServerFactory, seen: list[WebSocket]) -> TestServer:
    routes = RouteTable()

    async def echo(request: web.Request, ws: WebSocket) -> None:
        seen.append(ws)
        ws.on_text(lambda ws, text: ws.send(text))

    routes.websocket("/plain")(echo)
    routes.websocket("/handshake-only", middlewares=[with_faults(Faults(reject_rate=0.0))])(echo)
    routes.websocket("/delayed", middlewares=[with_faults(Faults(delay=1.0, seed=1))])(echo)
    app = web.Application()
    app.add_routes(routes)
    return await aiohttp_server(app)


async def test_only_a_connection_whose_sends_are_faulted_leaves_the_plain_path(
    aiohttp_server: ServerFactory,
) -> None:
    seen: list[WebSocket] = []
    server = await serve(aiohttp_server, seen)
    for path in ("/plain", "/handshake-only", "/delayed"):
        async with WebSocket.connect(f"ws://127.0.0.1:{server.port}{path}") as ws:
            await ws.send("hello")
    assert [type(ws) for ws in seen] == [WebSocket, WebSocket, FaultyWebSocket]
    assert [type(ws.wire) for ws in seen] == [Wire, Wire, FaultyWire]


async def test_delayed_messages_cost_no_task_and_no_timer_each(
    aiohttp_server: ServerFactory,
) -> None:
    seen: list[WebSocket] = []
    server = await serve(aiohttp_server, seen)
    loop = asyncio.get_running_loop()
    clients = [await WebSocket.connect(f"ws://127.0.0.1:{server.port}/delayed") for _ in range(50)]
    await asyncio.sleep(0.1)
    tasks = len(asyncio.all_tasks())
    timers = len(loop._scheduled)  # type: ignore[attr-defined]
    for client in clients:
        for index in range(20):
            client.send(str(index))
    await asyncio.sleep(0.3)  # all 1,000 received and waiting out their delay
    queued = sum(ws.faults.output.queued for ws in seen if isinstance(ws, FaultyWebSocket))
    assert queued >= 1000 * 3
    assert len(asyncio.all_tasks()) == tasks
    assert len(loop._scheduled) <= timers + 1  # type: ignore[attr-defined]
    for client in clients:
        await client.close()
