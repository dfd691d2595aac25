"""The pool in-process: what its lifecycle leaves behind, checked from inside the event loop.

The upstream is a `websockets` server task on a free loopback port; wsrelay's app runs on an
aiohttp AppRunner in the same loop, so the test can list the tasks and sockets that remain.
"""

from __future__ import annotations

import asyncio
import itertools

import websockets
from aiohttp import web
from websockets.asyncio.server import ServerConnection, serve

from service.app import create_app
from service.keys import POOL
from service.settings import Settings

from .peers import eventually


async def upstream(ws: ServerConnection) -> None:
    assert ws.request is not None
    if ws.request.path == "/tick":
        for n in itertools.count():
            await ws.send(f"tick {n}")
            await asyncio.sleep(0.01)
    async for message in ws:
        await ws.send(message)


def service_tasks() -> set[asyncio.Task[object]]:
    """Live tasks running wsrelay's own code."""
    return {
        task
        for task in asyncio.all_tasks()
        if "/service/" in task.get_coro().cr_code.co_filename  # type: ignore[union-attr]
    }


async def test_closing_the_app_closes_every_upstream_connection_and_ends_every_task() -> None:
    open_upstream: set[ServerConnection] = set()
    close_codes: list[int | None] = []

    async def tracked(ws: ServerConnection) -> None:
        open_upstream.add(ws)
        try:
            await upstream(ws)
        finally:
            await ws.wait_closed()
            open_upstream.discard(ws)
            close_codes.append(ws.close_code)

    async with serve(tracked, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        settings = Settings(
            upstreams={
                "echo": {"url": f"ws://127.0.0.1:{port}/echo", "min_idle": 2},
                "ticks": {"url": f"ws://127.0.0.1:{port}/tick"},
            },
            routes=[
                {"path": "/p", "mode": "proxy", "upstream": "echo"},
                {"path": "/f", "mode": "feed", "upstream": "ticks"},
            ],
        )
        app = create_app(settings)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        relay_port = runner.addresses[0][1]
        pool = app[POOL]
        await eventually(lambda: len(open_upstream) == 3, "2 idle + 1 feed connection")
        async with websockets.connect(f"ws://127.0.0.1:{relay_port}/p") as client:
            await client.send("hi")
            assert await client.recv() == "hi"
        await eventually(lambda: len(open_upstream) == 3, "the client's own one closed")
        assert service_tasks()  # the pumps, the keeper and the feed are running

        await runner.cleanup()

        assert not service_tasks()
        assert all(not upstream.links for upstream in pool.upstreams.values())
        await eventually(lambda: not open_upstream, "every upstream connection closed")
        # The client's own connection closed with its code, the rest with close frames (1001).
        assert close_codes == [1000, 1001, 1001, 1001]
