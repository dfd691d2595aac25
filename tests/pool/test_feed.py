"""feed routes end to end: one shared upstream connection, fanned out, surviving restarts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import websockets

from tests.support import RawClient, Service, free_port, http_get

from .peers import UpstreamProcess, eventually, relay

pytestmark = pytest.mark.e2e


def listener(url: str) -> Any:
    """A client that queues what it has not read yet: its close is never stuck behind ticks."""
    return websockets.connect(url, max_queue=None)


async def tick(ws: Any) -> tuple[int, int]:
    """(N, the upstream's pid) of the next "tick N PID" message."""
    message = await asyncio.wait_for(ws.recv(), 10)
    assert isinstance(message, str)
    word, number, pid = message.split()
    assert word == "tick"
    return int(number), int(pid)


async def ticks(ws: Any, count: int) -> list[int]:
    """The numbers of the next `count` ticks."""
    return [(await tick(ws))[0] for _ in range(count)]


async def resumed(ws: Any, pid: int) -> None:
    """Skip the old process's ticks still queued; the new one's arrive from its start, in order."""
    for _ in range(10_000):
        number, sender = await tick(ws)
        if sender == pid:
            break
    assert sender == pid
    assert number <= 5, f"the new process's first tick to arrive was {number}"
    assert await ticks(ws, 5) == list(range(number + 1, number + 6))


def failures(service: Service, reason: str) -> float:
    return service.metrics().value(
        "wsrelay_upstream_failures_total", upstream="ticks", reason=reason
    )


async def test_two_clients_get_the_same_sequence_from_one_upstream_connection() -> None:
    with UpstreamProcess() as upstream:
        upstreams = {"ticks": {"url": upstream.url("/tick?every=0.01")}}
        routes = [{"path": "/feed", "mode": "feed", "upstream": "ticks"}]
        with relay(upstreams, routes) as service:
            async with (
                listener(service.ws_url("/feed")) as a,
                listener(service.ws_url("/feed")) as b,
            ):
                seen_b = await ticks(b, 40)
                first = await ticks(a, 1)
                for _ in range(10_000):  # a joined first: skip what it saw before b joined
                    if first[-1] >= seen_b[0]:
                        break
                    first += await ticks(a, 1)
                seen_a = first[-1:] + await ticks(a, 39)
                assert seen_a == seen_b  # from b's first tick on, both saw the same sequence
                assert seen_b == list(range(seen_b[0], seen_b[0] + 40))  # nothing lost
                assert first == list(range(first[0], first[0] + len(first)))
            stats = upstream.stats()
            assert stats["opened"] == {"/tick": 1}
            assert (
                service.metrics().value(
                    "wsrelay_upstream_connections", upstream="ticks", state="active"
                )
                == 1
            )


async def test_feed_clients_stay_connected_while_the_upstream_restarts_and_resume() -> None:
    port = free_port()
    upstream = UpstreamProcess(port).start()
    upstreams = {
        "ticks": {
            "url": upstream.url("/tick?every=0.02"),
            "backoff_initial": 0.2,
            "backoff_max": 0.8,
        }
    }
    routes = [
        {
            "path": "/feed",
            "mode": "feed",
            "upstream": "ticks",
            "resubscribe": "subscribe",
            "required": True,
        }
    ]
    try:
        with relay(upstreams, routes) as service:
            async with (
                listener(service.ws_url("/feed")) as a,
                listener(service.ws_url("/feed")) as b,
            ):
                await ticks(a, 5)
                await ticks(b, 5)
                assert upstream.stats()["received"] == ["subscribe"]
                assert http_get(service.url("/readyz"))[0] == 200

                upstream.kill()
                await eventually(lambda: failures(service, "lost") == 1, "the loss counted")
                window_start = failures(service, "unreachable")
                started = time.monotonic()
                await asyncio.sleep(2.0)
                attempts = failures(service, "unreachable") - window_start
                window = time.monotonic() - started
                # Tried, but never faster than backoff_initial apart: no hot loop.
                assert 1 <= attempts <= window / 0.2 + 1, f"{attempts} attempts in {window:.1f}s"
                status, _, body = http_get(service.url("/readyz"))
                assert status == 503
                assert b"upstream ticks of /feed unreachable" in body

                upstream = UpstreamProcess(port).start()
                for ws in (a, b):  # still connected, and the new process's ticks arrive
                    await resumed(ws, upstream.pid)
                assert upstream.stats()["received"] == ["subscribe"]  # resubscribed
                await eventually(lambda: http_get(service.url("/readyz"))[0] == 200, "ready")
            metrics = service.metrics()
            assert metrics.value("wsrelay_upstream_connect_seconds_count", upstream="ticks") == 2
            assert (
                metrics.value(
                    "wsrelay_close_codes_total", route="/feed", code="1014", initiator="server"
                )
                == 0
            )  # nobody was closed by the outage
    finally:
        upstream.kill()


async def test_forward_sends_client_messages_upstream_only_when_asked() -> None:
    with UpstreamProcess() as upstream:
        upstreams = {"ticks": {"url": upstream.url("/tick?every=0.05")}}
        routes: list[dict[str, Any]] = [
            {"path": "/talk", "mode": "feed", "upstream": "ticks", "forward": True},
            {"path": "/listen", "mode": "feed", "upstream": "ticks"},
        ]
        with relay(upstreams, routes) as service:
            async with (
                listener(service.ws_url("/talk")) as talk,
                listener(service.ws_url("/listen")) as listen,
            ):
                await ticks(talk, 1)
                await ticks(listen, 1)
                await listen.send("from listen")
                await talk.send("from talk")
                await eventually(
                    lambda: "from talk" in upstream.stats()["received"], "forwarded upstream"
                )
                await ticks(listen, 3)  # after the forwarded one: the other had its chance
            assert "from listen" not in upstream.stats()["received"]
            assert upstream.stats()["opened"] == {"/tick": 2}  # one connection per feed route


async def test_a_slow_feed_client_is_closed_with_1008_and_the_others_miss_nothing() -> None:
    with UpstreamProcess() as upstream:
        # 64 KiB every 5 ms: a client that reads keeps up easily, one that does not falls
        # more than SEND_QUEUE_BYTES (1 MiB) behind within a second.
        url = upstream.url("/flood?count=300&size=65536&wait=1&every=0.005")
        upstreams = {"burst": {"url": url}}
        routes = [{"path": "/burst", "mode": "feed", "upstream": "burst", "forward": True}]
        with relay(upstreams, routes) as service:
            stalled = RawClient(service.port, "/burst", rcvbuf=4096)  # never reads
            assert stalled.status == 101
            try:
                async with listener(service.ws_url("/burst")) as fast:
                    await fast.send("go")  # forwarded: the upstream starts its burst
                    for index in range(300):
                        message = await asyncio.wait_for(fast.recv(), 20)
                        assert isinstance(message, bytes)
                        assert int.from_bytes(message[:4], "big") == index
                # The close is counted when it is over: the stalled client never answers it, so
                # that is after the close timeout (5 s), when its link is dropped. A loaded
                # machine is slow, not wrong: the bound is generous.
                deadline = time.monotonic() + 30
                while True:
                    metrics = service.metrics()
                    closed = metrics.value(
                        "wsrelay_close_codes_total", route="/burst", code="1008", initiator="server"
                    )
                    if closed or time.monotonic() > deadline:
                        break
                    await asyncio.sleep(0.1)
                assert closed == 1
                assert (
                    metrics.value(
                        "wsrelay_dropped_messages_total", route="/burst", reason="slow_consumer"
                    )
                    == 1
                )
            finally:
                stalled.close()
