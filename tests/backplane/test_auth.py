"""A password-protected Redis: the password in BACKPLANE_URL works and is never shown (logs,
`check-config`, /readyz, /metrics), in the userinfo or as a `?password=` option."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backplane.conftest import require_redis_server
from tests.backplane.redisproc import RedisServer
from tests.backplane.replicas import (
    assert_crosses,
    backplane_env,
    wait_ready,
    wait_unready,
    wait_until,
)
from tests.support import Service, clean_env, http_get, run_wsrelay

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
        wait_unready(replica)
        assert wrong not in replica.stderr + replica.stdout


def shown_by(service: Service) -> str:
    """Everything the replica shows: its output, /readyz, /metrics, /routes."""
    bodies = [
        http_get(service.url(path))[2].decode() for path in ("/readyz", "/metrics", "/routes")
    ]
    return "\n".join([service.stderr, service.stdout, *bodies])


def query_url(server: RedisServer, password: str) -> str:
    return f"redis://127.0.0.1:{server.port}/0?socket_timeout=5&password={password}"


def test_a_password_option_authenticates_and_is_shown_nowhere(
    protected_redis: RedisServer,
) -> None:
    with Service(backplane_env(query_url(protected_redis, PASSWORD))) as replica:
        wait_ready(replica)
        assert replica.metrics().value("wsrelay_backplane_up") == 1
        assert [e["event"] for e in replica.log_events()].count("backplane_up") == 1
        assert PASSWORD not in shown_by(replica)


@pytest.mark.parametrize("where", ["userinfo", "query"])
def test_a_wrong_password_is_in_no_log_readyz_or_metric(
    protected_redis: RedisServer, where: str
) -> None:
    wrong = "wrong-" + PASSWORD
    url = (
        protected_redis.url.replace(PASSWORD, wrong)
        if where == "userinfo"
        else query_url(protected_redis, wrong)
    )
    with Service(backplane_env(url)) as replica:
        wait_until(
            lambda: any(e.get("event") == "backplane_down" for e in replica.log_events()),
            "a failed connect in the log",
        )
        status, _, body = http_get(replica.url("/readyz"))
        assert (status, body) == (
            503,
            b'{"status":"unavailable","reasons":["backplane unreachable"]}',
        )
        assert wrong not in shown_by(replica)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"redis://:{PASSWORD}@127.0.0.1:6390/0", "redis://:***@127.0.0.1:6390/0"),
        (f"redis://127.0.0.1:6390/0?socket_timeout=5&password={PASSWORD}",
         "redis://127.0.0.1:6390/0?socket_timeout=5&password=***"),
        (f"rediss-cluster://app:{PASSWORD}@r1:7000,r2:7001",
         "rediss-cluster://app:***@r1:7000,r2:7001"),
    ],
)  # fmt: skip
def test_check_config_shows_the_url_with_its_password_masked(url: str, shown: str) -> None:
    result = run_wsrelay("check-config", env=clean_env(WSRELAY_BACKPLANE_URL=url))
    assert result.returncode == 0, result.stderr
    assert f"\n  backplane: {shown}\n" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


def test_serve_refuses_a_bad_url_without_showing_its_password() -> None:
    url = f"redis://127.0.0.1:6390/0?password={PASSWORD}&bogus_opt=1"
    result = run_wsrelay("serve", env=clean_env(WSRELAY_BACKPLANE_URL=url))
    assert result.returncode == 2
    assert "bogus_opt" in result.stderr
    assert "password=***" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr
