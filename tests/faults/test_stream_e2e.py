"""stream mode against the real process: seq, ts and size, the pace, the end, the bounds, 1008."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support import RawClient, Service

pytestmark = pytest.mark.e2e

ROUTES = [
    {"path": "/stream", "mode": "stream", "query_overrides": True},
    {"path": "/ticks", "mode": "stream", "rate": 20, "count": 3, "size": 100},
    {"path": "/firehose", "mode": "stream", "rate": 200, "size": 65536},
]


@pytest.fixture(scope="module")
def service() -> Any:
    with Service({"ROUTES": ROUTES, "SEND_QUEUE_BYTES": "262144"}) as running:
        yield running


async def receive_all(url: str) -> tuple[list[str | bytes], int | None, float]:
    started = time.monotonic()
    messages: list[str | bytes] = []
    async with websockets.connect(url) as ws:
        messages.extend([message async for message in ws])
    return messages, ws.close_code, time.monotonic() - started


async def test_count_text_messages_in_order_at_the_rate_then_1000(service: Service) -> None:
    messages, code, took = await receive_all(service.ws_url("/stream?rate=20&count=5&size=64"))
    assert code == 1000
    assert [len(m) for m in messages] == [64] * 5
    decoded = [json.loads(m) for m in messages]
    assert [d["seq"] for d in decoded] == [0, 1, 2, 3, 4]
    stamps = [d["ts"] for d in decoded]
    assert stamps == sorted(stamps)
    assert stamps[-1] <= time.time_ns()  # one-way delay is never negative on one host
    assert stamps[-1] - stamps[0] >= 0.15e9  # 4 intervals of 50 ms, less the coalescing
    assert took >= 0.15


async def test_binary_messages_carry_seq_and_ts(service: Service) -> None:
    messages, code, _ = await receive_all(service.ws_url("/stream?rate=100&count=3&binary=1"))
    assert code == 1000
    binary = [m for m in messages if isinstance(m, bytes)]
    assert [len(m) for m in binary] == [16, 16, 16]
    assert [struct.unpack("!QQ", m)[0] for m in binary] == [0, 1, 2]


async def test_duration_ends_the_stream_with_1000(service: Service) -> None:
    messages, code, took = await receive_all(service.ws_url("/stream?rate=20&duration=300ms"))
    assert code == 1000
    assert took >= 0.29
    seqs = [json.loads(m)["seq"] for m in messages]
    assert seqs == list(range(len(seqs)))
    assert 2 <= len(seqs) <= 7  # 300 ms at 20/s: 6 or 7, fewer only on a stalled machine


async def test_a_route_without_query_overrides_keeps_its_own_settings(service: Service) -> None:
    messages, code, _ = await receive_all(service.ws_url("/ticks?rate=1000&count=50&size=9"))
    assert code == 1000
    assert [len(m) for m in messages] == [100, 100, 100]


async def test_bad_or_unbounded_values_get_400_and_one_line(service: Service) -> None:
    for query, line in (
        ("rate=0", b"rate: 0 is outside 0.001-10000\n"),
        ("count=x", b"count: 'x' is not a whole number\n"),
        ("rate=10000&size=1048576", None),
    ):
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(service.ws_url(f"/stream?{query}"))
        response = refused.value.response
        assert response.status_code == 400
        body = bytes(response.body or b"")
        assert body.count(b"\n") == 1
        if line is not None:
            assert body == line
        else:
            assert body.startswith(b"size: rate x size = ")


async def test_stream_messages_are_counted_as_sent(service: Service) -> None:
    def sent() -> float:
        return service.metrics().value(
            "wsrelay_messages_total", route="/ticks", direction="out", type="text"
        )

    before = sent()
    await receive_all(service.ws_url("/ticks"))
    await asyncio.sleep(0.2)
    assert sent() - before == 3


async def test_a_client_that_does_not_read_is_cut_at_1008(service: Service) -> None:
    def cut() -> float:
        return service.metrics().value(
            "wsrelay_close_codes_total", route="/firehose", code="1008", initiator="server"
        )

    before = cut()
    # 12.5 MiB/s into a socket nobody reads: the send queue (256 KiB) fills in well under a second.
    client = RawClient(service.port, "/firehose", rcvbuf=4096)
    try:
        assert client.status == 101
        for _ in range(150):  # 30 s at most
            if cut() != before:
                break
            await asyncio.sleep(0.2)
        assert cut() - before == 1
        assert (
            service.metrics().value(
                "wsrelay_dropped_messages_total", route="/firehose", reason="slow_consumer"
            )
            >= 1
        )
    finally:
        client.sock.shutdown(socket.SHUT_RDWR)
        client.close()
