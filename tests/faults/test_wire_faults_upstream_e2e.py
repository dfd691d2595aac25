"""Faults on feed and proxy routes: wsrelay as a fault-injecting proxy in front of a real upstream.

The upstream is tests/pool/upstream_server.py in its own process; the clients are `websockets`
and raw sockets. What the upstream saw (close codes, messages) comes from its /stats.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from service.modes.proxy import ANSWER_GRACE
from tests.pool.peers import UpstreamProcess, eventually, relay
from tests.support import Service, client_frame

from .test_wire_faults_e2e import SLACK, Raw, injected, received_until_quiet, until_closed

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess() as running:
        yield running


@pytest.fixture(scope="module")
def service(upstream: UpstreamProcess) -> Iterator[Service]:
    upstreams: dict[str, dict[str, Any]] = {
        "echo": {"url": upstream.url("/echo")},
        "ticks": {"url": upstream.url("/flood?count=1000000&size=100&every=0.01")},
        "flood": {"url": upstream.url("/flood?count=40&size=16384")},
        "sink": {"url": upstream.url("/sink")},
    }
    routes: list[dict[str, Any]] = [
        {"path": "/proxy", "mode": "proxy", "upstream": "echo", "query_overrides": True},
        {"path": "/flood", "mode": "proxy", "upstream": "flood", "query_overrides": True},
        {"path": "/sink", "mode": "proxy", "upstream": "sink", "query_overrides": True},
        {"path": "/feed", "mode": "feed", "upstream": "ticks", "query_overrides": True},
    ]
    with relay(upstreams, routes, SEND_QUEUE_BYTES=str(256 * 1024)) as running:
        yield running


def index(message: str | bytes) -> int:
    """The number the upstream's /flood puts at the front of each message."""
    assert isinstance(message, bytes)
    return int(struct.unpack("!I", message[:4])[0])


# -- proxy -------------------------------------------------------------------------------------
def test_a_proxied_answer_is_delayed_and_fragmented(service: Service) -> None:
    raw = Raw(service.port, "/proxy?delay=300ms&fragment=16")
    sent_at = time.monotonic()
    raw.text("0123456789" * 4)
    found = [raw.frame() for _ in range(3)]
    waited = time.monotonic() - sent_at
    raw.close()
    assert found == [(0x01, b"0123456789012345"), (0x00, b"6789012345678901"), (0x80, b"23456789")]
    assert waited >= 0.3 - SLACK


async def proxied(service: Service, query: str) -> list[str]:
    async with websockets.connect(service.ws_url(f"/proxy?{query}")) as ws:
        for index in range(100):
            await ws.send(str(index))
        return await received_until_quiet(ws)


async def test_a_chaos_proxy_drops_the_same_upstream_answers_for_the_same_seed(
    service: Service,
) -> None:
    first = await proxied(service, "drop=0.25&jitter=30ms&seed=5")
    again = await proxied(service, "drop=0.25&jitter=30ms&seed=5")
    assert first == again
    assert first == sorted(first, key=int)
    assert 10 < 100 - len(first) < 45


async def test_close_after_on_a_proxy_closes_both_sides_with_the_code(
    service: Service, upstream: UpstreamProcess
) -> None:
    before = len(upstream.stats()["closes"].get("/echo", []))
    async with websockets.connect(
        service.ws_url("/proxy?close_after=2&close_code=4002&close_reason=enough")
    ) as ws:
        await ws.send("0")
        await ws.send("1")
        await ws.send("2")  # after the Nth: neither forwarded nor answered
        got = await until_closed(ws)
    # As on echo, the close comes once the 2nd message has been answered (here: by the
    # upstream), never before, and nothing after it is answered.
    assert got == ["0", "1"], (got, ws.close_code, ws.close_reason)
    assert (ws.close_code, ws.close_reason) == (4002, "enough")

    def upstream_closed_with_the_code() -> bool:
        return 4002 in upstream.stats()["closes"].get("/echo", [])[before:]

    await eventually(upstream_closed_with_the_code, "the upstream connection closed with 4002")


async def test_close_after_on_a_proxy_whose_upstream_never_answers_closes_after_a_grace(
    service: Service,
) -> None:
    started = time.monotonic()
    async with websockets.connect(service.ws_url("/sink?close_after=1&close_code=4003")) as ws:
        await ws.send("into the sink")
        got = await until_closed(ws)
    waited = time.monotonic() - started
    assert got == []
    assert ws.close_code == 4003
    assert waited >= ANSWER_GRACE - 0.5  # it waited for an answer that never came


def test_abort_in_on_a_proxy_leaves_the_client_without_a_close_frame(service: Service) -> None:
    raw = Raw(service.port, "/proxy?abort_in=300ms")
    raw.text("hello")
    found, end = raw.frames_until_end()
    raw.close()
    assert (found, end) == ([(0x81, b"hello")], "eof")


def test_no_pong_on_a_proxy(service: Service) -> None:
    raw = Raw(service.port, "/proxy?no_pong=1")
    raw.send(client_frame(0x9, b"hello?"))
    raw.text("data")
    assert raw.frame() == (0x81, b"data")
    raw.sock.settimeout(0.5)
    assert raw.frames_until_end() == ([], "timeout")
    raw.close()


async def test_a_throttled_client_slows_the_upstream_instead_of_being_cut(
    service: Service,
) -> None:
    # 40 x 16 kB from the upstream as fast as it may, to a client throttled to 200 kB/s: the
    # queue stays under SEND_QUEUE_BYTES (256 kB) because the upstream's reading waits.
    before = injected(service.metrics(), "/flood", "throttle")
    started = time.monotonic()
    async with websockets.connect(service.ws_url("/flood?throttle=200000")) as ws:
        got = [await asyncio.wait_for(ws.recv(), 20) for _ in range(40)]
    assert [index(message) for message in got] == list(range(40))
    assert time.monotonic() - started >= 2.5  # 640 kB at 200 kB/s: over three seconds
    assert injected(service.metrics(), "/flood", "throttle") - before >= 1


# -- feed --------------------------------------------------------------------------------------
def test_a_faulted_feed_client_gets_fragments_the_others_whole_messages(service: Service) -> None:
    faulted = Raw(service.port, "/feed?fragment=40")
    plain = Raw(service.port, "/feed")
    first, payload = plain.frame()
    assert (first, len(payload)) == (0x82, 100)
    for _ in range(5):
        frames = [faulted.frame() for _ in range(3)]
        assert [first for first, _ in frames] == [0x02, 0x00, 0x80]
        assert [len(payload) for _, payload in frames] == [40, 40, 20]
    faulted.close()
    plain.close()


async def test_a_delayed_feed_client_gets_every_message_in_order(service: Service) -> None:
    url = service.ws_url("/feed?delay=200ms&jitter=150ms")
    # max_queue=None: the client keeps reading the ticks, so it reads the close reply too.
    async with websockets.connect(url, max_queue=None) as ws:
        got = [await asyncio.wait_for(ws.recv(), 10) for _ in range(60)]
    indices = [index(message) for message in got]
    assert indices == list(range(indices[0], indices[0] + 60))


async def test_a_feed_client_closed_by_close_in(service: Service) -> None:
    opened = time.monotonic()
    async with websockets.connect(service.ws_url("/feed?close_in=300ms&close_code=4000")) as ws:
        got = await until_closed(ws)
    assert time.monotonic() - opened >= 0.3 - SLACK
    assert got
    assert ws.close_code == 4000
