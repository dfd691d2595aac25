"""Feed routes on several replicas sharing Redis: each replica holds its own upstream connection.

The upstream numbers its ticks across all its connections, so two replicas' connections carry
disjoint numbers: a client that saw the other replica's ticks would mean feed messages went
through the backplane (and would arrive twice).
"""

from __future__ import annotations

import asyncio

import pytest
import websockets

from tests.backplane.redisproc import RedisServer
from tests.backplane.replicas import backplane_env, wait_ready
from tests.pool.peers import UpstreamProcess
from tests.support import Service

pytestmark = pytest.mark.e2e


async def tick_numbers(url: str, count: int) -> list[int]:
    async with websockets.connect(url, max_queue=None) as ws:
        numbers: list[int] = []
        while len(numbers) < count:
            word, number, _pid = str(await asyncio.wait_for(ws.recv(), 10)).split()
            assert word == "tick"
            numbers.append(int(number))
        return numbers


async def test_each_replica_feeds_its_clients_from_its_own_upstream_connection(
    redis_server: RedisServer,
) -> None:
    with UpstreamProcess() as upstream:
        env = backplane_env(
            redis_server.url,
            UPSTREAMS={"ticks": {"url": upstream.url("/tick?every=0.01")}},
            ROUTES=[{"path": "/feed", "mode": "feed", "upstream": "ticks"}],
        )
        with Service(env) as a, Service(env) as b:
            wait_ready(a, b)
            on_a, on_b = await asyncio.gather(
                tick_numbers(a.ws_url("/feed"), 40), tick_numbers(b.ws_url("/feed"), 40)
            )
            assert on_a == sorted(set(on_a))  # in order, none twice
            assert on_b == sorted(set(on_b))
            assert not set(on_a) & set(on_b)  # nothing crossed between the replicas
            assert upstream.stats()["opened"] == {"/tick": 2}
            channels = redis_server.client().pubsub_channels("wsrelay:*")
            assert not [name for name in channels if b"/feed" in name]
