"""Every byte a connection writes goes through its `Wire`: a subclass swapped in on a live
connection (`ws.wire = MyWire.like(ws.wire)`) sees data, pongs, broadcasts and the close frame,
on the server and on the client side. The seam per-connection faults and passthrough build on."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestServer

from service import frames
from service.routing import RouteTable
from service.websocket import WebSocket
from service.wire import Wire

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class RecordingWire(Wire):
    """Records the opcode of every frame written (pre-encoded frames as 'frames')."""

    __slots__ = ("written",)

    def __init__(self, ws: web.WebSocketResponse | ClientWebSocketResponse[Any]) -> None:
        super().__init__(ws)
        self.written: list[int | str] = []

    def write(self, opcode: int, payload: bytes) -> bool:
        self.written.append(opcode)
        return super().write(opcode, payload)

    def write_frames(self, data: bytes) -> None:
        self.written.append("frames")
        super().write_frames(data)


async def test_a_swapped_wire_sees_every_frame_the_server_writes(
    aiohttp_server: ServerFactory,
) -> None:
    routes = RouteTable()
    wires: list[RecordingWire] = []

    @routes.websocket("/echo")
    async def echo(request: web.Request, ws: WebSocket) -> None:
        ws.wire = wire = RecordingWire.like(ws.wire)
        wires.append(wire)

        def reply(ws: WebSocket, text: str) -> None:
            ws.send(text)
            ws.send_frames(frames.encode(frames.OP_TEXT, b"encoded once"), 1, 0, 12)
            ws.close(4000, "done")

        ws.on_text(reply)

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    async with websockets.connect(f"ws://127.0.0.1:{server.port}/echo") as client:
        await client.ping(b"p")
        await client.send("hi")
        assert await client.recv() == "hi"
        assert await client.recv() == "encoded once"
        await client.wait_closed()
        assert client.close_code == 4000
    assert wires[0].written == [frames.OP_PONG, frames.OP_TEXT, "frames", frames.OP_CLOSE]


async def test_a_swapped_wire_sees_every_frame_a_client_writes(
    aiohttp_server: ServerFactory,
) -> None:
    routes = RouteTable()
    got: list[str] = []

    @routes.websocket("/sink")
    async def sink(request: web.Request, ws: WebSocket) -> None:
        ws.on_text(lambda ws, text: got.append(text))

    app = web.Application()
    app.add_routes(routes)
    server = await aiohttp_server(app)
    ws = await WebSocket.connect(f"ws://127.0.0.1:{server.port}/sink")
    ws.wire = wire = RecordingWire.like(ws.wire)
    await ws.send("masked")
    await ws.close(1000)
    assert await asyncio.wait_for(ws.wait_closed(), 10) == 1000
    assert wire.written == [frames.OP_TEXT, frames.OP_CLOSE]
    assert got == ["masked"]
