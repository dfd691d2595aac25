"""Three `wsrelay serve` replicas on one private redis-server, spoken to by `websockets`.

A message sent on one replica reaches the room's members on every replica exactly once, in
order, with its type and bytes intact, and nowhere else.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.backplane.redisproc import RedisServer
from tests.backplane.replicas import (
    backplane_env,
    channel,
    numsub,
    three_replicas,
    wait_ready,
    wait_subscribed,
    wait_until,
)
from tests.support import Service

pytestmark = pytest.mark.e2e

EVERYONE = "/everyone/{room}"
ROUTES = [
    {"path": "/rooms/{room}", "mode": "broadcast"},
    {"path": EVERYONE, "mode": "broadcast", "echo_to_sender": True},
    {"path": "/echo", "mode": "echo"},
]
RECV_TIMEOUT = 10.0


@pytest.fixture(scope="module")
def replicas(redis_server: RedisServer) -> Iterator[tuple[Service, Service, Service]]:
    with three_replicas(backplane_env(redis_server.url, ROUTES=ROUTES)) as trio:
        yield trio


@pytest.fixture
async def clients() -> AsyncIterator[Any]:
    """Opens clients on demand and closes them all after the test."""
    async with AsyncExitStack() as stack:

        async def connect(service: Service, path: str) -> ClientConnection:
            ws = await websockets.connect(service.ws_url(path), max_size=None)
            stack.push_async_callback(ws.close)
            return ws

        yield connect


async def recv(ws: ClientConnection) -> str | bytes:
    return await asyncio.wait_for(ws.recv(), RECV_TIMEOUT)


async def recv_until(ws: ClientConnection, marker: str) -> list[str | bytes]:
    got = []
    while (message := await recv(ws)) != marker:
        got.append(message)
    return got


async def test_a_message_reaches_every_replica_exactly_once_and_no_other_room(
    replicas: tuple[Service, Service, Service], redis_server: RedisServer, clients: Any
) -> None:
    a, b, c = replicas
    sender = await clients(a, "/rooms/r1")
    local = await clients(a, "/rooms/r1")
    on_b = await clients(b, "/rooms/r1")
    on_c = await clients(c, "/rooms/r1")
    other_room = await clients(b, "/rooms/r2")
    other_route = await clients(c, "/everyone/r1")
    redis = redis_server.client()
    wait_subscribed(redis, "r1", 3)
    wait_subscribed(redis, "r2", 1)
    wait_subscribed(redis, "r1", 1, route=EVERYONE)

    messages: list[str | bytes] = [
        f"text {i} ✓" if i % 2 else bytes([i, 0, 255]) * (i + 1) for i in range(20)
    ]
    messages += ["", b""]
    for message in messages:
        await sender.send(message)
    await sender.send("end")
    for receiver in (local, on_b, on_c):
        got = await recv_until(receiver, "end")
        assert got == messages  # each once, in the publisher's order, types kept
        assert [type(m) for m in got] == [type(m) for m in messages]

    # No late duplicates: the next thing anyone in r1 sees is a new message from C, and the
    # first sender never got its own messages back (its replica skips them by node id).
    await on_c.send("from c")
    for receiver in (sender, local, on_b):
        assert await recv(receiver) == "from c"

    # Nothing leaked into room r2 or into the same room name on another route.
    r2_on_a = await clients(a, "/rooms/r2")
    wait_subscribed(redis, "r2", 2)
    await r2_on_a.send("r2 only")
    assert await recv(other_room) == "r2 only"
    await other_route.send("everyone r1")  # echo_to_sender: it gets its own message first
    assert await recv(other_route) == "everyone r1"


async def test_large_binary_and_text_arrive_byte_exact(
    replicas: tuple[Service, Service, Service], redis_server: RedisServer, clients: Any
) -> None:
    a, b, _ = replicas
    on_a = await clients(a, "/rooms/big")
    on_b = await clients(b, "/rooms/big")
    wait_subscribed(redis_server.client(), "big", 2)
    blob = os.urandom(1 << 20)
    text = "wsrelay ✓ " * 10_000
    await on_b.send(blob)
    await on_b.send(text)
    assert await recv(on_a) == blob
    assert await recv(on_a) == text


async def test_echo_to_sender_gets_its_own_message_once_across_replicas(
    replicas: tuple[Service, Service, Service], redis_server: RedisServer, clients: Any
) -> None:
    a, b, _ = replicas
    on_a = await clients(a, "/everyone/e")
    on_b = await clients(b, "/everyone/e")
    wait_subscribed(redis_server.client(), "e", 2, route=EVERYONE)
    await on_a.send("one")
    await on_a.send("two")
    assert [await recv(on_a), await recv(on_a)] == ["one", "two"]
    assert [await recv(on_b), await recv(on_b)] == ["one", "two"]
    await on_b.send("three")  # on_a's next message is this one: no duplicate of its own
    assert await recv(on_a) == "three"


async def test_subscriptions_follow_local_membership(
    replicas: tuple[Service, Service, Service], redis_server: RedisServer, clients: Any
) -> None:
    a, b, _ = replicas
    redis = redis_server.client()
    name = channel("lonely")
    assert numsub(redis, name) == 0
    first = await clients(a, "/rooms/lonely")
    wait_subscribed(redis, "lonely", 1)
    second = await clients(a, "/rooms/lonely")
    on_b = await clients(b, "/rooms/lonely")
    wait_subscribed(redis, "lonely", 2)  # one subscription per replica, not per client
    await on_b.send("hi")
    assert await recv(first) == "hi"
    assert await recv(second) == "hi"
    await first.close()
    await second.close()
    wait_subscribed(redis, "lonely", 1)  # A left when its last member did
    await on_b.close()
    wait_until(lambda: numsub(redis, name) == 0, f"no subscriber of {name}")


async def test_replicas_on_another_database_are_another_deployment(
    replicas: tuple[Service, Service, Service], redis_server: RedisServer, clients: Any
) -> None:
    a, b, _ = replicas
    env = backplane_env(redis_server.url.removesuffix("/0") + "/1", ROUTES=ROUTES)
    with Service(env) as other, Service(env) as other2:
        wait_ready(other, other2)
        on_a = await clients(a, "/rooms/shared")
        on_b = await clients(b, "/rooms/shared")
        on_other = await clients(other, "/rooms/shared")
        on_other2 = await clients(other2, "/rooms/shared")
        redis = redis_server.client()
        wait_subscribed(redis, "shared", 2)
        wait_until(lambda: numsub(redis, channel("shared", db=1)) == 2, "db 1 subscribers")
        await on_a.send("db 0 only")
        assert await recv(on_b) == "db 0 only"  # Redis has relayed it by now
        await on_other2.send("db 1 marker")  # relayed after it, on the same server
        assert await recv(on_other) == "db 1 marker"  # never "db 0 only"
        # Closed while this loop still runs: leaving the block stops both replicas and blocks
        # the loop meanwhile, so an open client could not answer their drain's close frame and
        # each would wait its whole SHUTDOWN_TIMEOUT (10 s) before exiting.
        await on_other.close()
        await on_other2.close()


def test_every_replica_reports_the_backplane_up(
    replicas: tuple[Service, Service, Service],
) -> None:
    for replica in replicas:
        assert replica.metrics().value("wsrelay_backplane_up") == 1
