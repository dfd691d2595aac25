"""Fixtures of the backplane tests: a private redis-server for the module's replicas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.backplane.redisproc import RedisServer, redis_server_binary


def require_redis_server() -> None:
    """Skip loudly when the Debian package is missing (`make test` installs it as root)."""
    if redis_server_binary() is None:
        pytest.skip(
            "redis-server not found: install the Debian package redis-server "
            "(scripts/apt-packages.txt; `make test` does it as root)"
        )


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    require_redis_server()
    with RedisServer() as server:
        yield server
