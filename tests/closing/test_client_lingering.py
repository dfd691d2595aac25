"""`WebSocket.connect` clients linger too, on their own session and on a user's aiohttp session.

A raw upstream sends a message over the client's limit followed by a tail and keeps reading;
the client must answer 1009 and then wait for the server to end TCP, never reset a socket
with unread input (which can destroy the close frame before the server reads it).
"""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from service import WebSocket
from service.websocket import Options
from tests.closing.cases import LIMIT, RawUpstream
from tests.pool.peers import eventually

pytestmark = pytest.mark.timeout(120)
TRIES = 25


async def codes_seen_by_upstream(session: aiohttp.ClientSession | None) -> RawUpstream:
    upstream = RawUpstream("too_big", seed=5)
    try:
        for _ in range(TRIES):
            ws = await WebSocket.connect(
                f"ws://127.0.0.1:{upstream.port}/",
                session=session,
                options=Options(max_message_bytes=LIMIT),
            )
            assert await asyncio.wait_for(ws.wait_closed(), 20) == 1009
        await eventually(lambda: len(upstream.codes) == TRIES, "the upstream saw every close", 20)
    finally:
        upstream.close()
    return upstream


async def test_a_client_on_its_own_session_lingers() -> None:
    upstream = await codes_seen_by_upstream(None)
    assert upstream.codes == [1009] * TRIES
    assert upstream.endings == ["eof"] * TRIES


async def test_a_client_on_a_users_session_lingers_and_the_session_still_serves_others() -> None:
    async with aiohttp.ClientSession() as session:
        upstream = await codes_seen_by_upstream(session)
        assert upstream.codes == [1009] * TRIES
        assert upstream.endings == ["eof"] * TRIES
        # The user's own aiohttp WebSockets on that session behave as aiohttp's.
        seen = []

        async def echo(request: aiohttp.web.Request) -> aiohttp.web.WebSocketResponse:
            ws = aiohttp.web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                await ws.send_str(message.data)
            return ws

        app = aiohttp.web.Application()
        app.router.add_get("/", echo)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            async with session.ws_connect(f"ws://127.0.0.1:{port}/") as plain:
                await plain.send_str("hello")
                seen.append((await plain.receive(timeout=5)).data)
        finally:
            await runner.cleanup()
        assert seen == ["hello"]
