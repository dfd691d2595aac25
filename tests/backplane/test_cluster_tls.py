"""rediss-cluster:// with a password: replicas reach every master over TLS (trusting a private
CA named in the URL), authenticate with the URL's password and never log it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from functools import partial

import pytest
import websockets

from tests.backplane.clusterproc import Cluster, ClusterNode, redis_cli_binary
from tests.backplane.conftest import require_redis_server
from tests.backplane.redisproc import TLSFiles
from tests.backplane.replicas import backplane_env, wait_ready, wait_unready, wait_until
from tests.support import Service

pytestmark = pytest.mark.e2e

PASSWORD = "cluster-pa55word-9e2d"


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    require_redis_server()
    if redis_cli_binary() is None:
        pytest.skip("redis-cli not found: install the Debian package redis-tools")
    files = TLSFiles.issue(tmp_path_factory.mktemp("cluster-tls"))
    with Cluster(replicas_per_master=0, tls=files, password=PASSWORD) as cluster:
        yield cluster


async def test_rooms_cross_replicas_over_tls_on_every_master(tls_cluster: Cluster) -> None:
    assert tls_cluster.url.startswith(f"rediss-cluster://:{PASSWORD}@")
    env = backplane_env(tls_cluster.url)
    with Service(env) as a, Service(env) as b:
        wait_ready(a, b)
        rooms = [f"tls-{i}" for i in range(12)]
        senders = [await websockets.connect(a.ws_url(f"/rooms/{room}")) for room in rooms]
        receivers = [await websockets.connect(b.ws_url(f"/rooms/{room}")) for room in rooms]
        masters = list(tls_cluster.masters())

        def subscribed() -> bool:
            channels = set()
            for address in masters:
                channels |= tls_cluster.shard_channels(tls_cluster.node(address))
            return len(channels) == len(rooms) and all(
                tls_cluster.shard_channels(tls_cluster.node(address)) for address in masters
            )

        wait_until(subscribed, "every room subscribed, on every master")
        # A member on each side: wait until both replicas are subscribed to each room.
        for address in masters:
            node = tls_cluster.node(address)
            for name in tls_cluster.shard_channels(node):
                wait_until(partial(_both_subscribed, node, name), f"2 subscribers of {name}")
        for room, ws in zip(rooms, senders, strict=True):
            await ws.send(f"over tls to {room}")
        for room, ws in zip(rooms, receivers, strict=True):
            assert await asyncio.wait_for(ws.recv(), 10) == f"over tls to {room}"
        for ws in (*senders, *receivers):
            await ws.close()
        assert PASSWORD not in a.stderr + a.stdout + b.stderr + b.stdout


def test_a_replica_that_does_not_trust_the_certificate_is_not_ready(tls_cluster: Cluster) -> None:
    untrusted = tls_cluster.url.partition("?")[0]  # the system CAs do not know ours
    with Service(backplane_env(untrusted)) as replica:
        wait_unready(replica)
        assert PASSWORD not in replica.stderr + replica.stdout


def _both_subscribed(node: ClusterNode, channel: str) -> bool:
    return int(node.call("PUBSUB", "SHARDNUMSUB", channel)[1]) == 2
