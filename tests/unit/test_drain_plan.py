"""How drain closes are spread into batches, and how the whole drain fits in SHUTDOWN_TIMEOUT."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast

import pytest

from service.drain import CLEANUP_MARGIN, CLOSE_RESERVE, Drain, batch_plan, close_window
from service.websocket import WebSocket


def test_no_spread_closes_everyone_at_once() -> None:
    assert batch_plan(1000, 0) == [(0.0, 0, 1000)]


def test_spread_makes_batches_that_cover_everyone_once_within_the_spread() -> None:
    plan = batch_plan(1000, 2.0)
    assert len(plan) == 20
    covered = [index for _, start, end in plan for index in range(start, end)]
    assert covered == list(range(1000))
    offsets = [offset for offset, _, _ in plan]
    assert offsets == sorted(offsets)
    assert offsets[0] == 0.0
    assert offsets[-1] < 2.0


def test_fewer_connections_than_batches() -> None:
    assert [(start, end) for _, start, end in batch_plan(3, 5.0)] == [(0, 1), (1, 2), (2, 3)]
    assert batch_plan(0, 5.0) == []


# -- the whole drain fits in SHUTDOWN_TIMEOUT, counted from the signal -----------------------------
def test_a_spread_that_fits_after_the_delay_is_kept() -> None:
    assert close_window(delay=1, spread=2, timeout=10) == 2
    assert close_window(delay=0, spread=0, timeout=10) == 0
    # Exactly the room there is: timeout less the delay, the cleanup margin and the reserve.
    assert close_window(delay=5, spread=4, timeout=10) == 4


def test_a_spread_past_the_timeout_is_cut_to_the_time_left() -> None:
    assert close_window(delay=5, spread=8, timeout=10) == 10 - 5 - CLEANUP_MARGIN - CLOSE_RESERVE
    assert close_window(delay=1.5, spread=2.5, timeout=3) == pytest.approx(0.5)


def test_a_delay_that_leaves_no_room_closes_everyone_at_once() -> None:
    assert close_window(delay=9.5, spread=5, timeout=10) == 0
    assert close_window(delay=9.99, spread=9.99, timeout=10) == 0


@pytest.mark.parametrize("timeout", [1, 2.5, 10, 30])
def test_delay_plus_window_never_passes_the_timeout(timeout: float) -> None:
    steps = [timeout * index / 20 for index in range(20)]  # every value below the timeout
    for delay in steps:
        for spread in steps:
            window = close_window(delay, spread, timeout)
            assert 0 <= window <= spread
            assert window == 0 or delay + window + CLEANUP_MARGIN + CLOSE_RESERVE <= timeout + 1e-9
            if delay + spread + CLEANUP_MARGIN + CLOSE_RESERVE <= timeout:
                assert window == spread, "a spread that fits is never cut"


class FakeClient:
    """What Drain.run uses of a WebSocket: close, abort, on_close; it answers a close at once."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.closed_at: float | None = None
        self.code: int | None = None
        self.aborted = False
        self.on_close: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def close(self, code: int, reason: str = "") -> None:
        self.closed_at, self.code = self.clock(), code
        self.on_close.set_result(code)

    def abort(self, code: int, reason: str = "") -> None:
        self.aborted, self.code = True, code
        if not self.on_close.done():
            self.on_close.set_result(1006)


@pytest.mark.parametrize(
    ("delay", "spread", "timeout"),
    [
        (0.4, 1.5, 2.0),  # delay + spread > timeout: the spread is cut
        (0.2, 0.5, 2.0),  # fits: kept as it is
        (1.8, 1.0, 2.0),  # the delay alone reaches into the cleanup margin
    ],
)
async def test_the_drain_ends_within_the_timeout_and_closes_everyone(
    delay: float, spread: float, timeout: float
) -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    clients = [FakeClient(lambda: loop.time() - began) for _ in range(40)]
    drain = Drain()
    await drain.run(
        # FakeClient stands in for WebSocket by duck typing: it has what Drain.run uses
        lambda: cast("list[WebSocket]", [c for c in clients if not c.on_close.done()]),
        code=1012,
        delay=delay,
        spread=spread,
        timeout=timeout,
    )
    took = loop.time() - began
    assert drain.draining
    assert took <= timeout - CLEANUP_MARGIN + 0.1, f"drain took {took:.2f} s"
    assert all(c.code == 1012 and not c.aborted for c in clients)
    times = sorted(c.closed_at for c in clients if c.closed_at is not None)
    assert len(times) == len(clients)
    assert times[0] >= min(delay, timeout - CLEANUP_MARGIN) - 0.01, "no close before the delay"
    window = close_window(delay, spread, timeout)
    assert times[-1] - times[0] <= window + 0.1
    if window:
        assert times[-1] - times[0] >= window / 2, "closes are still spread, not all at once"
