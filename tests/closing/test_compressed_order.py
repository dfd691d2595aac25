"""Compressed messages keep their order, and a close frame comes after them.

aiohttp compresses a message over 16 KiB in an executor; on Python 3.11 a smaller message sent
meanwhile, and a close frame, were written before it (a reordered echo, a close that overtook
the data it should follow). Seen from `websockets` peers, against the real process (server
side) and in-process (wsrelay's client, on its own session and on a user's aiohttp session).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from service import WebSocket
from service.websocket import Options
from tests.support import Service

LARGE = 40_000  # compressed in aiohttp's executor
ROUTES: list[dict[str, Any]] = [
    {"path": "/deflate", "mode": "echo", "compress": True, "query_overrides": True},
]


def messages(rounds: int) -> list[bytes]:
    """Large and small messages in turn, each telling its place; random, so compression
    takes its time."""
    found = []
    for index in range(rounds):
        found.append(index.to_bytes(4, "big") + os.urandom(LARGE))
        found.append(index.to_bytes(4, "big") + b"small")
    return found


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with Service({"ROUTES": ROUTES}) as running:
        yield running


@pytest.mark.e2e
async def test_a_compressed_echo_keeps_the_order_of_large_and_small_messages(
    service: Service,
) -> None:
    sent = messages(20)
    async with websockets.connect(service.ws_url("/deflate"), max_size=None) as ws:
        assert ws.protocol.extensions  # permessage-deflate was agreed
        for message in sent:
            await ws.send(message)
        echoed = [await asyncio.wait_for(ws.recv(), 10) for _ in sent]
    assert echoed == sent


@pytest.mark.e2e
async def test_a_close_comes_after_the_compressed_answer_it_follows(service: Service) -> None:
    # close_after=1 closes once the first message has been answered: the answer goes first.
    for _ in range(10):
        message = os.urandom(LARGE)
        async with websockets.connect(
            service.ws_url("/deflate?close_after=1&close_code=4001"), max_size=None
        ) as ws:
            await ws.send(message)
            assert await asyncio.wait_for(ws.recv(), 10) == message
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 4001


async def close_seen_by_peer(session: aiohttp.ClientSession | None) -> int:
    """The close code a `websockets` server got from wsrelay's compressing client, once it
    had received every message sent before the close, in order."""
    got: list[bytes] = []
    code: list[int] = []

    async def handler(peer: Any) -> None:
        try:
            async for message in peer:
                got.append(message)
        except ConnectionClosed:
            pass
        code.append(peer.close_code)

    sent = messages(5)
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        ws = await WebSocket.connect(
            f"ws://127.0.0.1:{port}/",
            session=session,
            options=Options(compress=True, max_message_bytes=1 << 20),
        )
        for message in sent:
            ws.send(message)  # not awaited: the close must still come after all of them
        ws.close(4000, "done")
        assert await asyncio.wait_for(ws.wait_closed(), 10) == 4000
        for _ in range(100):
            if code:
                break
            await asyncio.sleep(0.05)
    assert got == sent
    return code[0]


async def test_the_client_writes_its_close_after_its_compressed_messages() -> None:
    assert await close_seen_by_peer(None) == 4000


async def test_the_same_on_a_users_own_aiohttp_session() -> None:
    async with aiohttp.ClientSession() as session:
        assert await close_seen_by_peer(session) == 4000
