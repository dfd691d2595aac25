"""Connection churn against a running wsrelay: connect, echo, close, with abrupt exits mixed in.

Shared by the churn test (a few thousand cycles in `make test`) and `make soak` (a longer run
with a report). Each cycle is one client on one route, ending one of four ways:
- a clean close (1000) after an echo;
- an abrupt drop right after the echo (TCP closed, no close frame: the server records 1006);
- a drop in the middle of a message (half a frame, then the socket goes);
- a drop in the middle of the handshake (half a request).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import websockets

from tests.churn.observe import open_fds, rss_bytes
from tests.fuzz.rawws import handshake
from tests.support import Service, client_frame

ENDINGS = ("clean", "abrupt", "mid_message", "mid_handshake")


@dataclass
class Snapshot:
    """What the server holds at one moment."""

    fds: int
    rss: int
    active: float

    @classmethod
    def of(cls, service: Service) -> Snapshot:
        assert service.process is not None
        pid = service.process.pid
        active = service.metrics().total("wsrelay_connections_active")
        return cls(fds=open_fds(pid), rss=rss_bytes(pid), active=active)


@dataclass
class ChurnStats:
    cycles: int = 0
    endings: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


async def _echo_cycle(url: str, ending: str, payload: bytes) -> None:
    async with websockets.connect(url, open_timeout=10, close_timeout=5, ping_interval=None) as ws:
        await ws.send(payload)
        async with asyncio.timeout(10):
            # In a room the others' messages arrive too: wait for our own.
            while (reply := await ws.recv()) != payload:
                assert isinstance(reply, bytes), "a text message came back for a binary one"
        if ending == "abrupt":
            ws.transport.abort()


async def _raw_cycle(port: int, path: str, ending: str) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        request = handshake(path, port)
        if ending == "mid_handshake":
            writer.write(request[: len(request) // 2])
        else:
            writer.write(request)
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            writer.write(client_frame(0x2, os.urandom(64))[:20])
        await writer.drain()
    finally:
        writer.transport.abort()


async def run_cycles(
    service: Service,
    paths: list[str],
    cycles: int,
    concurrency: int = 25,
    seed: int = 0,
    weights: tuple[int, int, int, int] = (5, 2, 1, 1),
) -> ChurnStats:
    """`cycles` connections over `paths`, `concurrency` at a time; endings drawn at random
    with `weights` (clean, abrupt, mid_message, mid_handshake)."""
    rng = random.Random(seed)
    plan = [(rng.choice(paths), rng.choices(ENDINGS, weights)[0]) for _ in range(cycles)]
    stats = ChurnStats()
    queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    for item in plan:
        queue.put_nowait(item)

    async def worker() -> None:
        while not queue.empty():
            path, ending = queue.get_nowait()
            try:
                if ending in ("clean", "abrupt"):
                    await _echo_cycle(service.ws_url(path), ending, os.urandom(rng.randint(1, 512)))
                else:
                    await _raw_cycle(service.port, path, ending)
            except Exception as error:  # counted: the caller asserts there are none
                stats.errors[f"{ending}: {type(error).__name__}: {error}"] += 1
            stats.cycles += 1
            stats.endings[ending] += 1

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    stats.seconds = time.monotonic() - started
    return stats


async def settle(service: Service, baseline: Snapshot, timeout: float = 30.0) -> Snapshot:
    """Wait (bounded) for the server to let go of every churned connection; the last reading."""
    deadline = time.monotonic() + timeout
    while True:
        now = Snapshot.of(service)
        if (now.active == baseline.active and now.fds <= baseline.fds) or (
            time.monotonic() > deadline
        ):
            return now
        await asyncio.sleep(0.2)
