"""Redis outages: replicas start without it, lose it and get it back, and say so.

Readiness and wsrelay_backplane_up follow the link, local rooms keep working meanwhile, what
could not be published is counted as dropped (never buffered and replayed), and the rooms
work again after Redis returns without any client reconnecting.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.backplane.conftest import require_redis_server
from tests.backplane.redisproc import RedisServer
from tests.backplane.replicas import backplane_env, readyz, wait_ready, wait_subscribed, wait_until
from tests.support import Service, free_port, http_get

pytestmark = pytest.mark.e2e

ROUTE = "/rooms/{room}"
RECV_TIMEOUT = 10.0


@pytest.fixture
def redis_port() -> int:
    require_redis_server()
    return free_port()


async def recv(ws: ClientConnection) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)


def dropped(service: Service) -> float:
    return service.metrics().value(
        "wsrelay_dropped_messages_total", route=ROUTE, reason="backplane"
    )


def backplane_up(service: Service) -> float:
    return service.metrics().value("wsrelay_backplane_up")


async def test_unreachable_at_start_serves_locally_then_becomes_ready(redis_port: int) -> None:
    env = backplane_env(f"redis://127.0.0.1:{redis_port}/0")
    with Service(env) as a, Service(env) as b:
        # Started and alive, but not ready: the backplane is down.
        status, _, body = http_get(a.url("/readyz"))
        assert status == 503
        assert b"backplane unreachable" in body
        assert readyz(b) == 503
        assert backplane_up(a) == backplane_up(b) == 0

        first = await websockets.connect(a.ws_url("/rooms/x"))
        second = await websockets.connect(a.ws_url("/rooms/x"))
        await first.send("local while down")
        assert await recv(second) == "local while down"
        assert dropped(a) == 1  # it could not reach the other replicas

        with RedisServer(redis_port) as redis_server:
            wait_ready(a, b)
            assert backplane_up(a) == backplane_up(b) == 1
            on_b = await websockets.connect(b.ws_url("/rooms/x"))
            wait_subscribed(redis_server.client(), "x", 2)  # A subscribed its existing room
            await on_b.send("across")
            assert await recv(first) == "across"
            assert await recv(second) == "across"
            await first.send("and back")
            assert await recv(on_b) == "and back"
            for ws in (first, second, on_b):
                await ws.close()


async def test_redis_restart_recovers_rooms_without_clients_reconnecting(
    redis_port: int,
) -> None:
    redis_server = RedisServer(redis_port).start()
    env = backplane_env(redis_server.url)
    try:
        with Service(env) as a, Service(env) as b:
            wait_ready(a, b)
            sender = await websockets.connect(a.ws_url("/rooms/x"))
            local = await websockets.connect(a.ws_url("/rooms/x"))
            remote = await websockets.connect(b.ws_url("/rooms/x"))
            wait_subscribed(redis_server.client(), "x", 2)
            await sender.send("before")
            assert await recv(remote) == "before"
            assert await recv(local) == "before"
            assert dropped(a) == 0

            redis_server.kill()
            wait_ready(a, b, status=503)
            assert backplane_up(a) == backplane_up(b) == 0
            outage = [f"during {i}" for i in range(5)]
            for message in outage:
                await sender.send(message)
            for message in outage:  # the replica's own room keeps working
                assert await recv(local) == message
            assert dropped(a) == len(outage)  # counted, not queued for later

            redis_server.start()
            wait_ready(a, b)
            assert backplane_up(a) == backplane_up(b) == 1
            await sender.send("after")
            assert await recv(remote) == "after"  # not one outage message replayed
            await remote.send("back")
            assert await recv(sender) == "back"
            assert await recv(local) == "after"
            assert await recv(local) == "back"
            assert dropped(a) == len(outage)
            assert dropped(b) == 0

            events = [event.get("event") for event in a.log_events()]
            assert "backplane_down" in events
            assert events.count("backplane_up") == 2  # the first connect and the reconnect
            for ws in (sender, local, remote):
                assert ws.close_code is None  # the same connections all along
                await ws.close()
    finally:
        redis_server.kill()


async def test_a_frozen_redis_is_detected_and_held_messages_count_as_dropped(
    redis_port: int,
) -> None:
    redis_server = RedisServer(redis_port).start()
    env = backplane_env(redis_server.url)
    try:
        with Service(env) as a, Service(env) as b:
            wait_ready(a, b)
            sender = await websockets.connect(a.ws_url("/rooms/f"))
            local = await websockets.connect(a.ws_url("/rooms/f"))
            remote = await websockets.connect(b.ws_url("/rooms/f"))
            wait_subscribed(redis_server.client(), "f", 2)

            redis_server.freeze()  # connections stay open; no reply ever comes
            burst = [f"frozen {i}" for i in range(200)]
            for message in burst:
                await sender.send(message)
            for message in burst:
                assert await recv(local) == message
            # The unanswered PUBLISH batch times out: A says it is down, and every message it
            # held for Redis is counted as dropped instead of waiting in memory.
            wait_ready(a, status=503)
            assert backplane_up(a) == 0
            assert dropped(a) == len(burst)

            redis_server.freeze(False)
            wait_ready(a, b)
            await sender.send("thawed")
            while (received := await recv(remote)) != "thawed":
                # Whatever Redis had already read before it froze may still come through, once.
                assert received in burst
            assert await recv(local) == "thawed"
            for ws in (sender, local, remote):
                await ws.close()
    finally:
        redis_server.kill()


async def test_a_subscriber_kicked_by_redis_reconnects_and_resubscribes(redis_port: int) -> None:
    """Redis drops a pub/sub client that reads too slowly (client-output-buffer-limit)."""
    with RedisServer(redis_port) as redis_server:
        env = backplane_env(redis_server.url)
        with Service(env) as a, Service(env) as b:
            wait_ready(a, b)
            on_a = await websockets.connect(a.ws_url("/rooms/k"))
            on_b = await websockets.connect(b.ws_url("/rooms/k"))
            client = redis_server.client()
            wait_subscribed(client, "k", 2)
            assert client.client_kill_filter(_type="pubsub") == 2

            def reconnected(service: Service) -> bool:
                events = [event.get("event") for event in service.log_events()]
                return "backplane_down" in events and events.count("backplane_up") == 2

            wait_until(lambda: reconnected(a) and reconnected(b), "both replicas reconnected")
            wait_ready(a, b)
            wait_subscribed(client, "k", 2)
            await on_b.send("still here")
            assert await recv(on_a) == "still here"
            await on_a.close()
            await on_b.close()
