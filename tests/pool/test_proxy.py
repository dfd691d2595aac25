"""proxy routes end to end: wsrelay as a process between a `websockets` client and upstream.

The upstream is tests/pool/upstream_server.py in its own process; what it saw (connections by
path, headers, close codes) comes from its /stats, so leaks and forwarded headers are counted
on the far side of the relay, not inferred from wsrelay's own word.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support import Service, free_port, http_get

from .peers import UpstreamProcess, eventually, relay, settled

pytestmark = pytest.mark.e2e

TOKEN = "proxy-test-token"
BIG = 2 * 1024 * 1024


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess() as running:
        yield running


@pytest.fixture(scope="module")
def service(upstream: UpstreamProcess) -> Iterator[Service]:
    upstreams: dict[str, dict[str, Any]] = {
        "echo": {"url": upstream.url("/echo"), "headers": {"X-Api-Key": "k1"}},
        "close": {"url": upstream.url("/close?code=4003")},
        "close1011": {"url": upstream.url("/close?code=1011")},
        "close1005": {"url": upstream.url("/close?code=1005")},
        "flood": {"url": upstream.url("/flood?count=600&size=65536")},
        "sink": {"url": upstream.url("/sink")},
    }
    routes: list[dict[str, Any]] = [
        {"path": "/echo", "mode": "proxy", "upstream": "echo", "max_message_bytes": BIG},
        {
            "path": "/chat",
            "mode": "proxy",
            "upstream": "echo",
            "subprotocols": ["chat"],
            "auth": "token",
        },
        {"path": "/close", "mode": "proxy", "upstream": "close"},
        {"path": "/close1011", "mode": "proxy", "upstream": "close1011"},
        {"path": "/close1005", "mode": "proxy", "upstream": "close1005"},
        {"path": "/flood", "mode": "proxy", "upstream": "flood"},
        {"path": "/sink", "mode": "proxy", "upstream": "sink"},
    ]
    with relay(upstreams, routes, AUTH_TOKENS=TOKEN, SEND_QUEUE_BYTES="262144") as running:
        yield running


def upstream_open(upstream: UpstreamProcess, path: str) -> int:
    return int(upstream.stats()["open"].get(path, 0))


async def test_text_binary_empty_and_large_messages_pass_both_ways_byte_exact_in_order(
    service: Service,
) -> None:
    messages: list[str | bytes] = [
        "hello",
        "héllo wörld ✓",
        b"\x00\x01\xff",
        b"",
        "",
        os.urandom(BIG),
        "x" * (1 << 20),
        *(f"n{i}" if i % 2 else f"b{i}".encode() for i in range(200)),
    ]
    async with websockets.connect(service.ws_url("/echo"), max_size=None) as ws:
        for message in messages:  # all sent before any reply is read: order is the relay's
            await ws.send(message)
        for message in messages:
            reply = await asyncio.wait_for(ws.recv(), 20)
            assert type(reply) is type(message)
            assert reply == message


async def test_the_subprotocol_and_selected_headers_reach_the_upstream_but_not_credentials(
    service: Service, upstream: UpstreamProcess
) -> None:
    before = len(upstream.stats()["headers"])
    async with websockets.connect(
        service.ws_url("/chat"),
        subprotocols=["chat"],  # type: ignore[list-item]
        user_agent_header="pool-test/1.0",
        additional_headers={
            "Authorization": f"Bearer {TOKEN}",
            "Cookie": "session=secret",
            "X-Forwarded-For": "203.0.113.7",
        },
    ) as ws:
        assert ws.subprotocol == "chat"
        await ws.send("hi")
        assert await ws.recv() == "hi"
    stats = upstream.stats()
    headers = {key.lower(): value for key, value in stats["headers"][before].items()}
    assert stats["subprotocols"][before] == "chat"
    assert headers["user-agent"] == "pool-test/1.0"
    assert headers["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{service.port}"
    assert headers["x-api-key"] == "k1"  # the upstream's configured headers
    assert "authorization" not in headers
    assert "cookie" not in headers
    assert TOKEN not in str(stats["headers"])


@pytest.mark.parametrize(
    ("path", "code", "relayed"),
    [("/close", 4003, 4003), ("/close1011", 1011, 1011), ("/close1005", 1005, 1014)],
)
async def test_the_upstreams_close_code_reaches_the_client_unchanged_or_as_1014(
    service: Service, path: str, code: int, relayed: int
) -> None:
    """Codes that may be sent pass unchanged; a close without a status (1005) is never turned
    into 1000: the client gets 1014."""
    async with websockets.connect(service.ws_url(path)) as ws:
        await ws.send("please close")
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == relayed
    await eventually(
        lambda: (
            service.metrics().value(
                "wsrelay_upstream_close_codes_total",
                upstream=path.strip("/"),
                code="4xxx" if code == 4003 else str(code),
                initiator="upstream",
            )
            >= 1
        ),
        "the upstream's close counted with initiator=upstream",
    )


async def test_the_clients_close_code_reaches_the_upstream(
    service: Service, upstream: UpstreamProcess
) -> None:
    ws = await websockets.connect(service.ws_url("/echo"))
    await ws.send("x")
    await ws.recv()
    await ws.close(code=4001, reason="done")
    await eventually(lambda: 4001 in upstream.stats()["close_codes"], "4001 seen upstream")


async def test_closed_clients_leave_no_upstream_connection_behind(
    service: Service, upstream: UpstreamProcess
) -> None:
    await eventually(lambda: upstream_open(upstream, "/echo") == 0, "no /echo connection yet")
    clients = [await websockets.connect(service.ws_url("/echo")) for _ in range(6)]
    for index, ws in enumerate(clients):
        await ws.send(f"c{index}")
        assert await ws.recv() == f"c{index}"
    assert upstream_open(upstream, "/echo") == 6
    assert (
        service.metrics().value("wsrelay_upstream_connections", upstream="echo", state="active")
        == 6
    )
    for index, ws in enumerate(clients):
        await ws.close(code=1000 if index % 2 else 4000)
    await eventually(lambda: upstream_open(upstream, "/echo") == 0, "every upstream closed")
    await eventually(
        lambda: (
            service.metrics().value("wsrelay_upstream_connections", upstream="echo", state="active")
            == 0
        ),
        "the active gauge back to 0",
    )


async def test_a_slow_client_slows_the_reading_of_its_upstream_and_loses_nothing(
    service: Service, upstream: UpstreamProcess
) -> None:
    """600 x 64 KiB (39 MB) from the upstream while the client reads nothing: the upstream
    stalls (it cannot write more than the buffers on the way hold), wsrelay does not close the
    client as a slow consumer, and once the client reads, everything arrives in order."""
    async with websockets.connect(service.ws_url("/flood"), max_queue=1, max_size=None) as ws:
        await eventually(lambda: upstream.stats()["flooded"] > 0, "the flood started")
        stalled = await settled(lambda: int(upstream.stats()["flooded"]))
        assert 0 < stalled < 600, f"the upstream wrote {stalled} of 600 unread messages"
        for index in range(600):
            message = await asyncio.wait_for(ws.recv(), 20)
            assert isinstance(message, bytes)
            assert int.from_bytes(message[:4], "big") == index
    assert service.metrics().value("wsrelay_dropped_messages_total", route="/flood") == 0


async def test_an_upstream_that_does_not_read_slows_its_client(
    service: Service, upstream: UpstreamProcess
) -> None:
    sent = 0

    async def flood(ws: Any) -> None:
        nonlocal sent
        for index in range(600):
            await ws.send(index.to_bytes(4, "big") + bytes(65532))
            sent += 1

    async with websockets.connect(service.ws_url("/sink"), max_size=None) as ws:
        writer = asyncio.ensure_future(flood(ws))
        await eventually(lambda: sent > 0, "the flood started")
        stalled = await settled(lambda: sent)
        assert 0 < stalled < 600, f"the client wrote {stalled} of 600 unread messages"
        upstream.release()
        await asyncio.wait_for(writer, 30)
        await eventually(lambda: upstream.stats()["sunk"] == 600, "all 600 read upstream")


async def test_a_killed_upstream_closes_its_client_with_1014_and_counts_the_failure() -> None:
    with UpstreamProcess() as doomed:
        routes = [{"path": "/p", "mode": "proxy", "upstream": "doomed"}]
        with relay({"doomed": {"url": doomed.url("/echo")}}, routes) as service:
            async with websockets.connect(service.ws_url("/p")) as ws:
                await ws.send("alive?")
                assert await ws.recv() == "alive?"
                doomed.kill()
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1014
            metrics = service.metrics()
            assert (
                metrics.value("wsrelay_upstream_failures_total", upstream="doomed", reason="lost")
                == 1
            )
            assert (
                metrics.value(
                    "wsrelay_upstream_close_codes_total",
                    upstream="doomed",
                    code="1006",
                    initiator="upstream",
                )
                == 1
            )
            assert (
                metrics.value(
                    "wsrelay_close_codes_total", route="/p", code="1014", initiator="server"
                )
                == 1
            )


async def test_an_upstream_that_stops_answering_pings_gives_1014() -> None:
    with UpstreamProcess() as frozen:
        upstreams = {"frozen": {"url": frozen.url("/echo"), "ping_interval": 0.2}}
        routes = [{"path": "/p", "mode": "proxy", "upstream": "frozen"}]
        with relay(upstreams, routes, PING_TIMEOUT="0.5") as service:
            async with websockets.connect(service.ws_url("/p")) as ws:
                await ws.send("alive?")
                assert await ws.recv() == "alive?"
                await eventually(
                    lambda: (
                        service.metrics().value(
                            "wsrelay_upstream_ping_rtt_seconds_count", upstream="frozen"
                        )
                        >= 1
                    ),
                    "a ping answered before the freeze",
                )
                frozen.freeze()
                with pytest.raises(ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 10)
            assert closed.value.rcvd is not None
            assert closed.value.rcvd.code == 1014
            metrics = service.metrics()
            assert (
                metrics.value(
                    "wsrelay_upstream_failures_total", upstream="frozen", reason="ping_timeout"
                )
                == 1
            )


async def close_code_of(url: str) -> tuple[int, float]:
    """Connect, then wait for wsrelay's close: (code, seconds from the handshake)."""
    async with websockets.connect(url) as ws:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 20)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, time.monotonic() - started


async def test_an_unreachable_upstream_gives_1014_and_a_silent_one_1014_after_connect_timeout() -> (
    None
):
    silent = socket.socket()  # accepts TCP (the kernel's backlog) but never answers the upgrade
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    upstreams: dict[str, dict[str, Any]] = {
        "refused": {"url": f"ws://127.0.0.1:{free_port()}/x"},
        "silent": {"url": f"ws://127.0.0.1:{silent.getsockname()[1]}/x", "connect_timeout": 1},
    }
    routes = [
        {"path": "/refused", "mode": "proxy", "upstream": "refused"},
        {"path": "/silent", "mode": "proxy", "upstream": "silent"},
    ]
    try:
        with relay(upstreams, routes) as service:
            code, _ = await close_code_of(service.ws_url("/refused"))
            assert code == 1014
            code, waited = await close_code_of(service.ws_url("/silent"))
            assert code == 1014
            assert 0.9 <= waited < 4, f"closed {waited:.2f}s after the handshake"
            metrics = service.metrics()
            assert (
                metrics.value(
                    "wsrelay_upstream_failures_total", upstream="refused", reason="unreachable"
                )
                == 1
            )
            assert (
                metrics.value(
                    "wsrelay_upstream_failures_total", upstream="silent", reason="timeout"
                )
                == 1
            )
    finally:
        silent.close()


async def test_a_full_pool_closes_the_next_client_with_1013_after_acquire_timeout() -> None:
    with UpstreamProcess() as upstream:
        upstreams = {
            "small": {"url": upstream.url("/echo"), "max_connections": 2, "acquire_timeout": 1}
        }
        routes = [{"path": "/p", "mode": "proxy", "upstream": "small"}]
        with relay(upstreams, routes) as service:
            first = await websockets.connect(service.ws_url("/p"))
            second = await websockets.connect(service.ws_url("/p"))
            for ws in (first, second):
                await ws.send("in")
                assert await ws.recv() == "in"
            code, waited = await close_code_of(service.ws_url("/p"))
            assert code == 1013
            assert waited >= 0.9, f"refused after {waited:.2f}s, before acquire_timeout"
            assert upstream_open(upstream, "/echo") == 2
            assert (
                service.metrics().value(
                    "wsrelay_upstream_failures_total", upstream="small", reason="pool_exhausted"
                )
                == 1
            )
            # A client that waits while a slot frees up gets it.
            waiting = asyncio.ensure_future(websockets.connect(service.ws_url("/p")))
            await asyncio.sleep(0.2)
            await first.close()
            third = await asyncio.wait_for(waiting, 10)
            await third.send("late")
            assert await asyncio.wait_for(third.recv(), 10) == "late"
            await third.close()
            await second.close()


async def test_min_idle_connections_are_open_before_any_client_and_topped_up() -> None:
    with UpstreamProcess() as upstream:
        upstreams = {"warm": {"url": upstream.url("/greet"), "min_idle": 2, "ping_interval": 0.1}}
        routes = [{"path": "/p", "mode": "proxy", "upstream": "warm"}]
        with relay(upstreams, routes) as service:
            await eventually(lambda: upstream_open(upstream, "/greet") == 2, "2 pre-connected")
            metrics = service.metrics()
            assert metrics.value("wsrelay_upstream_connections", upstream="warm", state="idle") == 2
            assert metrics.value("wsrelay_connections_opened_total", route="/p") == 0
            async with websockets.connect(service.ws_url("/p")) as ws:
                # The greeting was sent before the client came: held, then handed over.
                assert await asyncio.wait_for(ws.recv(), 10) == "welcome"
                await ws.send("hi")
                assert await asyncio.wait_for(ws.recv(), 10) == "hi"
                await eventually(lambda: upstream_open(upstream, "/greet") == 3, "topped up")
                await eventually(
                    lambda: (
                        service.metrics().value(
                            "wsrelay_upstream_connections", upstream="warm", state="idle"
                        )
                        == 2
                    ),
                    "2 idle again",
                )
            await eventually(lambda: upstream_open(upstream, "/greet") == 2, "client's one closed")
            await eventually(
                lambda: (
                    service.metrics().value(
                        "wsrelay_upstream_ping_rtt_seconds_count", upstream="warm"
                    )
                    >= 2
                ),
                "pings measured on the idle connections",
            )
            metrics = service.metrics()
            assert metrics.value("wsrelay_upstream_connect_seconds_count", upstream="warm") == 3


async def test_shutdown_closes_every_upstream_connection_with_1001_and_leaks_nothing() -> None:
    with UpstreamProcess() as upstream:
        upstreams: dict[str, dict[str, Any]] = {
            "warm": {"url": upstream.url("/echo"), "min_idle": 2},
            "ticks": {"url": upstream.url("/tick?every=0.05")},
        }
        routes = [
            {"path": "/p", "mode": "proxy", "upstream": "warm"},
            {"path": "/f", "mode": "feed", "upstream": "ticks"},
        ]
        service = relay(upstreams, routes, SHUTDOWN_TIMEOUT="5").start()
        try:
            ws = await websockets.connect(service.ws_url("/p"))
            await ws.send("x")
            assert await ws.recv() == "x"
            await eventually(
                lambda: upstream.stats()["open"] == {"/echo": 3, "/tick": 1}, "3 + 1 upstream"
            )
            assert service.stop() == 0
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
            assert ws.close_code == 1001
        finally:
            if service.process and service.process.poll() is None:
                service.process.kill()
        stats = upstream.stats()
        assert stats["open"] == {"/echo": 0, "/tick": 0}
        # Close frames, no dropped sockets.
        assert stats["closes"] == {"/echo": [1001] * 3, "/tick": [1001]}, stats["closes"]
        for leak in ("Traceback", "Unclosed", "Task was destroyed", "never retrieved"):
            assert leak not in service.stderr, service.stderr


async def test_required_proxy_upstream_gates_readiness() -> None:
    port = free_port()
    upstreams = {
        "must": {"url": f"ws://127.0.0.1:{port}/echo", "backoff_initial": 0.1, "backoff_max": 0.3}
    }
    routes = [{"path": "/p", "mode": "proxy", "upstream": "must", "required": True}]
    with relay(upstreams, routes) as service:
        status, _, body = http_get(service.url("/readyz"))
        assert status == 503
        assert b"upstream must of /p unreachable" in body
        with UpstreamProcess(port):
            await eventually(lambda: http_get(service.url("/readyz"))[0] == 200, "ready")
        await eventually(lambda: http_get(service.url("/readyz"))[0] == 503, "unready again")
