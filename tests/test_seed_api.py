"""Every code sample of the seed (Vapor's WebSocket docs) has a Python twin here that runs.

Each test quotes the Swift sample it mirrors. Servers are real aiohttp servers on loopback;
clients are `WebSocket.connect`, so both sides of the API are exercised.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.middlewares import origin_check, token_auth
from service.routing import RouteTable
from service.websocket import Options, WebSocket

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


async def serve(aiohttp_server: ServerFactory, routes: RouteTable) -> str:
    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    return f"ws://127.0.0.1:{server.port}"


async def test_echo_route(aiohttp_server: ServerFactory) -> None:
    # app.webSocket("echo") { req, ws in
    #     // Connected WebSocket.
    #     print(ws)
    # }
    routes = RouteTable()
    connected: list[WebSocket] = []

    @routes.websocket("/echo")
    async def echo(request: web.Request, ws: WebSocket) -> None:
        print(ws)
        connected.append(ws)

    base = await serve(aiohttp_server, routes)
    async with WebSocket.connect(f"{base}/echo"):
        await asyncio.sleep(0.05)
    assert len(connected) == 1


async def test_routes_grouped_and_protected_by_middleware(aiohttp_server: ServerFactory) -> None:
    # "WebSocket routes can be grouped and protected by middleware like normal routes."
    routes = RouteTable()
    api = routes.group(
        "/api", middlewares=[token_auth(["s3cret"]), origin_check(["https://app.example.com"])]
    )
    reached: list[str] = []

    @api.websocket("/chat")
    async def chat(request: web.Request, ws: WebSocket) -> None:
        reached.append(request.path)
        ws.on_text(lambda ws, text: ws.send(text))

    base = await serve(aiohttp_server, routes)
    with pytest.raises(Exception, match="401"):
        await WebSocket.connect(f"{base}/api/chat")
    with pytest.raises(Exception, match="403"):
        await WebSocket.connect(
            f"{base}/api/chat",
            headers={"Authorization": "Bearer s3cret", "Origin": "https://evil.example.com"},
        )
    assert reached == []  # the middlewares ran before the upgrade
    async with WebSocket.connect(
        f"{base}/api/chat", headers={"Authorization": "Bearer s3cret"}
    ) as ws:
        replies: asyncio.Queue[str] = asyncio.Queue()
        ws.on_text(lambda ws, text: replies.put_nowait(text))
        await ws.send("hi")
        assert await asyncio.wait_for(replies.get(), 5) == "hi"
    assert reached == ["/api/chat"]


@pytest.fixture
async def echo_server(aiohttp_server: ServerFactory) -> str:
    """The seed's echo: `ws.onText { ws, text in ws.send(text) }`, and the same for binary."""
    routes = RouteTable()

    @routes.websocket("/echo", options=Options(ping_interval=0.05))
    async def echo(request: web.Request, ws: WebSocket) -> None:
        ws.on_text(lambda ws, text: ws.send(text))
        ws.on_binary(lambda ws, data: ws.send(data))

    return f"{await serve(aiohttp_server, routes)}/echo"


async def test_client_connect(echo_server: str) -> None:
    # WebSocket.connect(to: "ws://echo.websocket.org", on: eventLoop) { ws in
    #     // Connected WebSocket.
    #     print(ws)
    # }
    ws = await WebSocket.connect(echo_server)
    print(ws)
    assert not ws.closed
    await ws.close()


async def test_send_text_and_binary(echo_server: str) -> None:
    # ws.send("Hello, world")
    # ws.send([1, 2, 3])
    async with WebSocket.connect(echo_server) as ws:
        got: asyncio.Queue[str | bytes] = asyncio.Queue()
        ws.on_text(lambda ws, text: got.put_nowait(text))
        ws.on_binary(lambda ws, data: got.put_nowait(data))
        ws.send("Hello, world")
        ws.send(b"\x01\x02\x03")
        assert await asyncio.wait_for(got.get(), 5) == "Hello, world"
        assert await asyncio.wait_for(got.get(), 5) == b"\x01\x02\x03"


async def test_send_with_a_promise(echo_server: str) -> None:
    # let promise = eventLoop.makePromise(of: Void.self)
    # ws.send(..., promise: promise)
    # promise.futureResult.whenComplete { result in
    #     // Succeeded or failed to send.
    # }
    async with WebSocket.connect(echo_server) as ws:
        results: list[BaseException | None] = []
        future = ws.send("tracked")
        future.add_done_callback(lambda f: results.append(f.exception()))
        await asyncio.sleep(0)
        assert results == [None]
    failed = ws.send("after close")
    with pytest.raises(ConnectionResetError):
        await failed


async def test_await_send(echo_server: str) -> None:
    # try await ws.send(...)
    async with WebSocket.connect(echo_server) as ws:
        await ws.send("awaited")
        await ws.send(bytearray(b"\x00" * 100_000))


async def test_on_text_and_on_binary(echo_server: str) -> None:
    # ws.onText { ws, text in print(text) }
    # ws.onBinary { ws, binary in print(binary) }
    async with WebSocket.connect(echo_server) as ws:
        seen: list[object] = []
        done = asyncio.Event()

        async def on_binary(ws: WebSocket, binary: bytes) -> None:  # async callbacks work too
            print(binary)
            seen.append(binary)
            done.set()

        ws.on_text(lambda ws, text: seen.append(text))
        ws.on_binary(on_binary)
        ws.send("text first")
        ws.send(b"binary second")
        await asyncio.wait_for(done.wait(), 5)
        assert seen == ["text first", b"binary second"]


async def test_echo_reply_from_the_callback(aiohttp_server: ServerFactory) -> None:
    # // Echoes received messages.
    # ws.onText { ws, text in ws.send(text) }
    routes = RouteTable()

    @routes.websocket("/echo")
    async def echo(request: web.Request, ws: WebSocket) -> None:
        ws.on_text(lambda ws, text: ws.send(text))

    base = await serve(aiohttp_server, routes)
    async with WebSocket.connect(f"{base}/echo") as ws:
        await ws.send("ping-pong by text")
        async for message in ws:  # `async for` reads the replies directly
            assert message == "ping-pong by text"
            break


async def test_close_close_with_promise_and_await_close(echo_server: str) -> None:
    # ws.close()
    first = await WebSocket.connect(echo_server)
    first.close()
    assert await asyncio.wait_for(first.on_close, 5) == 1000
    # ws.close(promise: nil) -- the returned future, observed or not
    second = await WebSocket.connect(echo_server)
    closing = second.close(code=4000)
    closing.add_done_callback(lambda f: None)
    await asyncio.wait_for(closing, 5)
    assert second.close_code == 4000
    # try await ws.close()
    third = await WebSocket.connect(echo_server)
    await third.close()
    assert third.closed
    assert third.close_code == 1000


async def test_on_close_completes_whichever_side_closes(aiohttp_server: ServerFactory) -> None:
    # ws.onClose.whenComplete { result in
    #     // Succeeded or failed to close.
    # }
    routes = RouteTable()
    server_side: list[WebSocket] = []

    @routes.websocket("/bye")
    async def bye(request: web.Request, ws: WebSocket) -> None:
        server_side.append(ws)
        ws.on_text(lambda ws, text: ws.close(code=4001))

    base = await serve(aiohttp_server, routes)
    ws = await WebSocket.connect(f"{base}/bye")
    completed: list[int] = []
    ws.on_close.add_done_callback(lambda f: completed.append(f.result()))
    ws.on_text(lambda ws, text: None)  # start reading: the peer's close must be noticed
    ws.send("please close")
    assert await asyncio.wait_for(ws.on_close, 5) == 4001
    await asyncio.sleep(0)
    assert completed == [4001]
    assert await asyncio.wait_for(server_side[0].on_close, 5) == 4001


async def test_close_code_tells_why_the_peer_closed(aiohttp_server: ServerFactory) -> None:
    # The `closeCode` property is set when the WebSocket closes.
    routes = RouteTable()

    @routes.websocket("/policy")
    async def policy(request: web.Request, ws: WebSocket) -> None:
        await ws.close(code=1008, reason="no thanks")

    base = await serve(aiohttp_server, routes)
    ws = await WebSocket.connect(f"{base}/policy")
    await ws.run()
    assert ws.close_code == 1008
    assert ws.closed_by_peer


async def test_on_ping_and_on_pong(aiohttp_server: ServerFactory) -> None:
    # ws.onPing { ws in // Ping was received. }
    # ws.onPong { ws in // Pong was received. }
    routes = RouteTable()
    server_pongs: list[bytes] = []
    measured = asyncio.Event()

    @routes.websocket("/keepalive", options=Options(ping_interval=0.05))
    async def keepalive(request: web.Request, ws: WebSocket) -> None:
        def on_pong(ws: WebSocket, payload: bytes) -> None:
            server_pongs.append(payload)
            if ws.latency is not None:
                measured.set()

        ws.on_pong(on_pong)

    base = await serve(aiohttp_server, routes)
    async with WebSocket.connect(f"{base}/keepalive", options=Options(ping_interval=0.05)) as ws:
        client_pings: list[bytes] = []
        client_pongs: list[bytes] = []
        ws.on_ping(lambda ws, payload: client_pings.append(payload))
        ws.on_pong(lambda ws, payload: client_pongs.append(payload))
        await asyncio.wait_for(measured.wait(), 5)
        for _ in range(100):
            if client_pongs:
                break
            await asyncio.sleep(0.02)
        assert client_pings
        assert len(client_pings[0]) == 8
        assert client_pongs
        assert ws.latency is not None
        assert ws.latency >= 0
    assert server_pongs
    assert len(server_pongs[0]) == 8
