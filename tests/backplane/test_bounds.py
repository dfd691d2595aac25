"""The queue toward Redis is bounded in messages and bytes while Redis does not answer.

In process, against a real redis-server frozen with SIGSTOP after the backplane connected:
the hot path never waits, and what does not fit is dropped and counted at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

from service import frames
from service.backplane.redis import MAX_PENDING, MAX_PENDING_BYTES, RedisBackplane
from service.metrics import Metrics
from tests.backplane.conftest import require_redis_server
from tests.backplane.redisproc import RedisServer

ROOM = "/rooms/{room}#bounded"


@pytest.fixture
def frozen_redis() -> Iterator[RedisServer]:
    require_redis_server()
    with RedisServer() as server:
        yield server


@pytest.fixture
async def backplane(frozen_redis: RedisServer) -> AsyncIterator[RedisBackplane]:
    backplane = RedisBackplane(frozen_redis.url, Metrics())
    await backplane.start()
    for _ in range(400):  # connected within 20 s, or the test fails below
        if backplane.up:
            break
        await asyncio.sleep(0.05)
    assert backplane.up
    frozen_redis.freeze()
    yield backplane
    await backplane.close()
    frozen_redis.freeze(False)


def dropped(backplane: RedisBackplane) -> float:
    counter = backplane.metrics.dropped_messages.labels("/rooms/{room}", "backplane")
    return float(counter._value.get())


async def test_past_max_pending_messages_each_new_one_is_dropped(
    backplane: RedisBackplane,
) -> None:
    extra = 500
    for _ in range(MAX_PENDING + extra):  # no await: the writer cannot take any meanwhile
        backplane.publish(ROOM, frames.OP_TEXT, b"m", None)
    assert dropped(backplane) == extra


async def test_past_max_pending_bytes_each_new_one_is_dropped(backplane: RedisBackplane) -> None:
    size = 1 << 20
    count = 2 * MAX_PENDING_BYTES // size
    for _ in range(count):
        backplane.publish(ROOM, frames.OP_BINARY, b"\x00" * size, None)
    accepted = count - dropped(backplane)
    assert 0 < accepted * size <= MAX_PENDING_BYTES
