"""Faults on a stream route: what the server pushes is dropped, delayed and fragmented too.

A stream message carries its `seq` and its send time `ts`, so loss, order and one-way delay are
read off the messages themselves.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from tests.churn.observe import rss_bytes
from tests.support import Service, client_frame

from .test_wire_faults_e2e import SLACK, Raw, injected, until_closed

pytestmark = pytest.mark.e2e

ROUTES: list[dict[str, Any]] = [{"path": "/stream", "mode": "stream", "query_overrides": True}]


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with Service({"ROUTES": ROUTES}) as running:
        yield running


async def stream(service: Service, query: str) -> tuple[list[dict[str, Any]], int | None]:
    """The messages of one stream and its close code."""
    async with websockets.connect(service.ws_url(f"/stream?{query}")) as ws:
        got = await until_closed(ws)
    return [json.loads(message) for message in got], ws.close_code


async def test_a_seeded_lossy_stream_loses_the_same_seqs_and_still_ends_with_1000(
    service: Service,
) -> None:
    before = injected(service.metrics(), "/stream", "drop")
    first, code = await stream(service, "rate=500&count=100&drop=0.3&seed=4")
    again, code_again = await stream(service, "rate=500&count=100&drop=0.3&seed=4")
    seqs = [message["seq"] for message in first]
    assert seqs == [message["seq"] for message in again]
    assert seqs == sorted(seqs)
    assert 10 < 100 - len(seqs) < 50  # gaps a client can see in seq
    assert (code, code_again) == (1000, 1000)
    assert injected(service.metrics(), "/stream", "drop") - before == 2 * (100 - len(seqs))


async def test_a_delayed_stream_arrives_late_by_its_own_timestamps_and_in_order(
    service: Service,
) -> None:
    async with websockets.connect(service.ws_url("/stream?rate=100&count=20&delay=300ms")) as ws:
        late = []
        seqs = []
        for _ in range(20):
            message = json.loads(await ws.recv())
            late.append(time.time_ns() - message["ts"])
            seqs.append(message["seq"])
        rest = await until_closed(ws)
    assert seqs == list(range(20))
    assert rest == []
    assert min(late) >= (0.3 - SLACK) * 1e9  # one-way delay from the message's send time
    assert ws.close_code == 1000  # the close waited behind the delayed messages


def test_a_fragmented_stream(service: Service) -> None:
    raw = Raw(service.port, "/stream?rate=100&count=3&size=40&fragment=16")
    data = [raw.frame() for _ in range(9)]
    assert raw.frame() == (0x88, struct.pack("!H", 1000))  # after count, not fragmented
    raw.send(client_frame(0x8, struct.pack("!H", 1000)))
    assert raw.frames_until_end() == ([], "eof")
    raw.close()
    assert [first for first, _ in data] == [0x01, 0x00, 0x80] * 3
    messages = [
        json.loads(b"".join(payload for _, payload in data[index : index + 3]))
        for index in range(0, 9, 3)
    ]
    assert [message["seq"] for message in messages] == [0, 1, 2]


async def test_a_delayed_firehose_is_cut_at_1008_instead_of_held_in_memory(
    service: Service,
) -> None:
    # 10 MB/s, each message held 30 s: without the send queue's bound that is 300 MB held.
    assert service.process is not None
    pid = service.process.pid
    rss_before = rss_bytes(pid)
    metrics = service.metrics()
    cut_before = metrics.value(
        "wsrelay_dropped_messages_total", route="/stream", reason="slow_consumer"
    )
    async with websockets.connect(service.ws_url("/stream?rate=5000&size=2000&delay=30s")) as ws:
        got = await until_closed(ws)
    assert got == []  # everything was still held when the queue went over SEND_QUEUE_BYTES
    assert ws.close_code == 1008
    cut_after = service.metrics().value(
        "wsrelay_dropped_messages_total", route="/stream", reason="slow_consumer"
    )
    assert cut_after - cut_before == 1
    assert rss_bytes(pid) - rss_before < 32 * 2**20
