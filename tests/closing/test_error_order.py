"""A protocol error ends the connection after the messages that came before it.

The peer sends a valid text message and, in the same write, a frame breaking the protocol (a
reserved bit: 1002). The message came first, so it reaches the application first, whether it
reads with callbacks or with `async for`, and what the application sends in answer goes out
before the close frame (Autobahn's strict behaviour in cases 3.x/4.x/5.15/6.4). A message left
unread does not hold the close back beyond the close timeout.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from service import WebSocket
from service.websocket import Options
from tests.closing.cases import RawUpstream
from tests.pool.peers import eventually

pytestmark = pytest.mark.timeout(120)
TRIES = 10


async def echoed_before_the_close(reading: str) -> RawUpstream:
    upstream = RawUpstream("bad_after_text")
    try:
        for _ in range(TRIES):
            ws = await WebSocket.connect(f"ws://127.0.0.1:{upstream.port}/")
            if reading == "async for":
                async for data in ws:
                    ws.send(data)
            else:
                ws.on_text(lambda ws, text: ws.send(text))
            assert await asyncio.wait_for(ws.wait_closed(), 10) == 1002
        await eventually(lambda: len(upstream.codes) == TRIES, "every close reached the peer")
    finally:
        upstream.close()
    return upstream


@pytest.mark.parametrize("reading", ["async for", "callbacks"])
async def test_the_answer_to_a_message_before_a_violation_goes_out_before_the_close(
    reading: str,
) -> None:
    upstream = await echoed_before_the_close(reading)
    assert upstream.codes == [1002] * TRIES
    assert upstream.texts == [[b"Hello"]] * TRIES
    assert upstream.endings == ["eof"] * TRIES


async def test_a_message_nobody_reads_holds_the_close_back_only_until_the_close_timeout() -> None:
    upstream = RawUpstream("bad_after_text")
    try:
        started = time.monotonic()
        ws = await WebSocket.connect(
            f"ws://127.0.0.1:{upstream.port}/", options=Options(close_timeout=1.0)
        )
        await eventually(lambda: len(upstream.codes) == 1, "the close reached the peer")
        waited = time.monotonic() - started
        assert await asyncio.wait_for(ws.wait_closed(), 10) == 1002
    finally:
        upstream.close()
    assert upstream.codes == [1002]
    assert upstream.texts == [[]]
    assert waited >= 0.9
