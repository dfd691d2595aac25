"""The WebSocket class against a real server: races a user meets in practice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from service.routing import RouteTable
from service.websocket import Options, WebSocket

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


async def test_callbacks_run_straight_from_the_frame_reader(aiohttp_server: ServerFactory) -> None:
    # No task wakes up per message: a callback runs inside the socket's data_received, where
    # asyncio has no current task, on the server and on a client opened by connect().
    routes = RouteTable()
    server_tasks: list[asyncio.Task[object] | None] = []

    @routes.websocket("/echo")
    async def echo(request: web.Request, ws: WebSocket) -> None:
        def back(ws: WebSocket, text: str) -> asyncio.Future[None]:
            server_tasks.append(asyncio.current_task())
            return ws.send(text)

        ws.on_text(back)

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    client_tasks: list[asyncio.Task[object] | None] = []
    replies: list[str] = []
    async with WebSocket.connect(f"ws://127.0.0.1:{server.port}/echo") as ws:

        def got(ws: WebSocket, text: str) -> None:
            client_tasks.append(asyncio.current_task())
            replies.append(text)

        ws.on_text(got)
        for i in range(50):
            await ws.send(f"m{i}")
        for _ in range(200):
            if len(replies) == 50:
                break
            await asyncio.sleep(0.01)
    assert replies == [f"m{i}" for i in range(50)]
    assert server_tasks == [None] * 50
    assert client_tasks == [None] * 50


async def test_an_async_callback_holds_the_next_messages(aiohttp_server: ServerFactory) -> None:
    # Vapor's promise semantics: the next message waits for the callback before it, in order,
    # even though the frames arrive together and the fast path would take them at once.
    routes = RouteTable()
    seen: list[str] = []
    running = 0
    most = 0

    @routes.websocket("/slow")
    async def slow(request: web.Request, ws: WebSocket) -> None:
        async def handle(ws: WebSocket, text: str) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.002)
            seen.append(text)
            running -= 1
            if text == "last":
                await ws.send("done")

        ws.on_text(handle)

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    async with WebSocket.connect(f"ws://127.0.0.1:{server.port}/slow") as ws:
        sent = [f"m{i}" for i in range(40)] + ["last"]
        for text in sent:
            ws.send(text)  # not awaited: all of them reach the server in a few reads
        reply = await asyncio.wait_for(aiter(ws).__anext__(), 10)
    assert reply == "done"
    assert seen == sent
    assert most == 1


async def test_a_failing_callback_closes_with_1011(aiohttp_server: ServerFactory) -> None:
    routes = RouteTable()

    @routes.websocket("/broken")
    async def broken(request: web.Request, ws: WebSocket) -> None:
        def fail(ws: WebSocket, text: str) -> None:
            raise ValueError("a bug in a callback")

        ws.on_text(fail)

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    ws = await WebSocket.connect(f"ws://127.0.0.1:{server.port}/broken")
    ws.send("boom")
    await asyncio.wait_for(ws.run(), 5)
    assert ws.close_code == 1011
    assert ws.closed_by_peer


async def test_a_greeting_sent_with_the_handshake_reaches_the_client_whole(
    aiohttp_server: ServerFactory,
) -> None:
    # The server writes right after the 101, so the first frames (a large one split over
    # several reads) come with or just after the handshake response: the client's reader,
    # swapped for the fast path, must see every byte of them.
    big = bytes(range(256)) * 1024  # 256 KiB
    routes = RouteTable()

    @routes.websocket("/greet")
    async def greet(request: web.Request, ws: WebSocket) -> None:
        ws.send("hello")
        ws.send(big)
        ws.send("bye")

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    for _ in range(10):
        async with WebSocket.connect(f"ws://127.0.0.1:{server.port}/greet") as ws:
            messages = aiter(ws)
            got = [await asyncio.wait_for(anext(messages), 5) for _ in range(3)]
        assert got == ["hello", big, "bye"]


async def test_pings_and_pongs_are_handled_by_the_frame_reader(
    aiohttp_server: ServerFactory,
) -> None:
    # Keepalive costs no task wakeup either: the server's pings are answered, and their pongs
    # timed, inside data_received on each side.
    routes = RouteTable()
    server_pongs: list[asyncio.Task[object] | None] = []

    @routes.websocket("/keepalive", options=Options(ping_interval=0.05, ping_timeout=5))
    async def keepalive(request: web.Request, ws: WebSocket) -> None:
        ws.on_pong(lambda ws, payload: server_pongs.append(asyncio.current_task()))

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    client_pings: list[asyncio.Task[object] | None] = []
    quiet = Options(ping_interval=0)
    async with WebSocket.connect(f"ws://127.0.0.1:{server.port}/keepalive", options=quiet) as ws:
        ws.on_ping(lambda ws, payload: client_pings.append(asyncio.current_task()))
        for _ in range(200):
            if len(server_pongs) >= 3:
                break
            await asyncio.sleep(0.01)
    assert len(client_pings) >= 3
    assert len(server_pongs) >= 3
    assert set(client_pings) == {None}
    assert set(server_pongs) == {None}
