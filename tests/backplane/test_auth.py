"""A password-protected Redis: the password in BACKPLANE_URL works and is never logged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backplane.conftest import require_redis_server
from tests.backplane.redisproc import RedisServer
from tests.backplane.replicas import assert_crosses, backplane_env, wait_ready, wait_until
from tests.support import Service

pytestmark = pytest.mark.e2e

PASSWORD = "backplane-pa55word-4f1c"


@pytest.fixture(scope="module")
def protected_redis() -> Iterator[RedisServer]:
    require_redis_server()
    with RedisServer(password=PASSWORD) as server:
        yield server


async def test_replicas_authenticate_with_the_url_password(protected_redis: RedisServer) -> None:
    env = backplane_env(protected_redis.url)
    with Service(env) as a, Service(env) as b:
        wait_ready(a, b)
        await assert_crosses(protected_redis.client(), b, a, "auth", "authenticated")
        assert PASSWORD not in a.stderr + a.stdout


def test_a_wrong_password_keeps_the_replica_unready_and_out_of_the_logs(
    protected_redis: RedisServer,
) -> None:
    wrong = "not-the-" + PASSWORD
    url = protected_redis.url.replace(PASSWORD, wrong)
    with Service(backplane_env(url)) as replica:
        wait_until(
            lambda: any(e.get("event") == "backplane_down" for e in replica.log_events()),
            "a failed connect in the log",
        )
        wait_ready(replica, status=503)
        assert replica.metrics().value("wsrelay_backplane_up") == 0
        assert wrong not in replica.stderr + replica.stdout
