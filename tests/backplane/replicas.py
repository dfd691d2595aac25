"""Helpers for tests that run several `wsrelay serve` replicas on one Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import websockets

from tests.support import Service, http_get

ROOMS = "/rooms/{room}"


def channel(room: str, route: str = ROOMS, db: int = 0) -> str:
    """The Redis channel of a room, as service/backplane/redis.py names it."""
    return f"wsrelay:{db}:{route}#{room}"


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll `check` until it holds; fail with `what` after `timeout` (a bound, not a speed test)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def readyz(service: Service) -> int:
    return http_get(service.url("/readyz"))[0]


def wait_ready(*services: Service, status: int = 200) -> None:
    for service in services:

        def answers(s: Service = service) -> bool:
            return readyz(s) == status

        wait_until(answers, f"/readyz {status} on :{service.port}")


def wait_unready(replica: Service, what: str = "a failed connect in the log") -> None:
    """A replica whose backplane cannot connect: the failure logged (`backplane_down`, waited
    for as `what`), then /readyz 503 and wsrelay_backplane_up at 0."""
    wait_until(lambda: any(e.get("event") == "backplane_down" for e in replica.log_events()), what)
    wait_ready(replica, status=503)
    assert replica.metrics().value("wsrelay_backplane_up") == 0


def numsub(client: Any, name: str) -> int:
    """How many connections are subscribed to `name`, as Redis itself counts them."""
    return int(dict(client.pubsub_numsub(name))[name.encode()])


def wait_subscribed(client: Any, room: str, replicas: int, route: str = ROOMS) -> None:
    name = channel(room, route)
    wait_until(lambda: numsub(client, name) == replicas, f"{replicas} subscribers of {name}")


def backplane_env(url: str, **extra: Any) -> dict[str, Any]:
    return {"BACKPLANE_URL": url, **extra}


async def assert_crosses(
    redis_client: Any, sender: Service, receiver: Service, room: str, message: str | bytes
) -> None:
    """A member of `room` on `sender` sends `message`; a member on `receiver` gets it."""
    async with (
        websockets.connect(sender.ws_url(f"/rooms/{room}")) as on_sender,
        websockets.connect(receiver.ws_url(f"/rooms/{room}")) as on_receiver,
    ):
        wait_subscribed(redis_client, room, 2)
        await on_sender.send(message)
        assert await asyncio.wait_for(on_receiver.recv(), 10) == message


@contextmanager
def three_replicas(env: dict[str, Any]) -> Iterator[tuple[Service, Service, Service]]:
    """Three `wsrelay serve` processes on one backplane, ready."""
    with ExitStack() as stack:
        a, b, c = (stack.enter_context(Service(env)) for _ in range(3))
        wait_ready(a, b, c)
        yield a, b, c
