"""How a replica hands messages to Redis: the chosen writer against two obvious alternatives.

All three publish `count` messages of `size` bytes to one channel from one process, produced
`CHUNK` at a time per event-loop turn (as a replica reading many sockets would):
  pipelined    RedisBackplane itself: enqueue on the hot path, one writer task sending
               pipelined batches of PUBLISH (what wsrelay does)
  sequential   one writer task, one PUBLISH round trip per message (redis-py client)
  task-per-msg asyncio.create_task(client.publish(...)) for every message (redis-py, 32-conn pool)
Reported: messages/s until Redis has them all, and this process's CPU microseconds per message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis

from service import frames
from service.backplane.redis import RedisBackplane
from service.metrics import Metrics

CHUNK = 100
ROOM = "/bench#hotpath"


async def _produce(count: int, publish: Callable[[], None]) -> None:
    for start in range(0, count, CHUNK):
        for _ in range(min(CHUNK, count - start)):
            publish()
        await asyncio.sleep(0)


async def pipelined(url: str, count: int, size: int) -> dict[str, Any]:
    metrics = Metrics()
    backplane = RedisBackplane(url, metrics)
    await backplane.start()
    while not backplane.up:  # noqa: ASYNC110 - polling the flag /readyz reads
        await asyncio.sleep(0.01)
    payload = b"x" * size

    def publish() -> None:
        backplane.publish(ROOM, frames.OP_BINARY, payload, None)

    async def run() -> None:
        await _produce(count, publish)
        assert await backplane.flush(60)

    result = await _measure(count, run)
    dropped = metrics.dropped_messages.labels("/bench", "backplane")._value.get()
    await backplane.close()
    return {**result, "dropped": int(dropped)}


async def sequential(url: str, count: int, size: int) -> dict[str, Any]:
    client = Redis.from_url(url)
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    payload = b"x" * size

    async def writer() -> None:
        for _ in range(count):
            await client.publish("bench:sequential", await queue.get())

    async def run() -> None:
        task = asyncio.create_task(writer())
        await _produce(count, lambda: queue.put_nowait(payload))
        await task

    result = await _measure(count, run)
    await client.aclose()
    return result


async def task_per_message(url: str, count: int, size: int) -> dict[str, Any]:
    client = Redis(connection_pool=BlockingConnectionPool.from_url(url, max_connections=32))
    payload = b"x" * size
    tasks: list[asyncio.Task[Any]] = []

    def publish() -> None:
        # redis-py types publish() for its sync and async clients alike (an Awaitable); on
        # redis.asyncio it is a coroutine. No cast: it would add a call to the measured path.
        tasks.append(asyncio.create_task(client.publish("bench:tasks", payload)))  # type: ignore[arg-type]

    async def run() -> None:
        await _produce(count, publish)
        await asyncio.gather(*tasks)

    result = await _measure(count, run)
    await client.aclose()
    return result


async def _measure(count: int, run: Callable[[], Awaitable[None]]) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    await run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "messages": count,
        "seconds": round(wall, 3),
        "msgs_per_s": round(count / wall),
        "cpu_us_per_msg": round(cpu / count * 1e6, 1),
    }


async def compare(url: str, count: int, size: int) -> dict[str, dict[str, Any]]:
    return {
        "pipelined": await pipelined(url, count, size),
        "sequential": await sequential(url, count, size),
        "task-per-msg": await task_per_message(url, count, size),
    }
