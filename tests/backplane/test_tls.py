"""rediss://: replicas reach Redis over TLS, trusting a private CA named in the URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backplane.conftest import require_redis_server
from tests.backplane.redisproc import RedisServer, TLSFiles
from tests.backplane.replicas import assert_crosses, backplane_env, wait_ready, wait_unready
from tests.support import Service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    require_redis_server()
    files = TLSFiles.issue(tmp_path_factory.mktemp("redis-tls"))
    with RedisServer(tls=files) as server:
        yield server


async def test_rooms_cross_replicas_over_tls(tls_redis: RedisServer) -> None:
    assert tls_redis.url.startswith("rediss://")
    env = backplane_env(tls_redis.url)
    with Service(env) as a, Service(env) as b:
        wait_ready(a, b)
        await assert_crosses(tls_redis.client(), a, b, "tls", b"\x00secret\xff")


def test_a_replica_that_does_not_trust_the_certificate_is_not_ready(
    tls_redis: RedisServer,
) -> None:
    untrusted = tls_redis.url.partition("?")[0]  # the system CAs do not know ours
    with Service(backplane_env(untrusted)) as replica:
        wait_unready(replica, "a refused TLS handshake in the log")
