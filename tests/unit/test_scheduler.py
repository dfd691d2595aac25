"""The shared scheduler: deadlines in order, re-armed by what `due` returns, cancelled at once."""

from __future__ import annotations

import pytest

from service.scheduler import Scheduler, cancel


class Clocked:
    """Records when it ran; due again every `every` seconds, `times` times."""

    def __init__(self, name: str, log: list[tuple[str, float]], every: float, times: int) -> None:
        self.name = name
        self.log = log
        self.every = every
        self.left = times
        self.next = 0.0

    def due(self, now: float) -> float | None:
        self.log.append((self.name, round(now, 3)))
        self.left -= 1
        if self.left == 0:
            return None
        self.next += self.every
        return self.next


def test_everything_due_runs_in_deadline_order_and_again_at_its_next_deadline() -> None:
    scheduler = Scheduler(clock=lambda: 0.0)
    log: list[tuple[str, float]] = []
    a, b = Clocked("a", log, 1.0, 3), Clocked("b", log, 0.5, 2)
    b.next = 0.2
    scheduler.add(a, 0.0)
    scheduler.add(b, 0.2)
    assert len(scheduler) == 2
    for now in (0.0, 0.1, 0.2, 0.7, 1.0, 2.0, 3.0):
        scheduler.tick(now)
    # `due` is asked with the end of the coalescing window.
    assert log == [("a", 0.005), ("b", 0.205), ("b", 0.705), ("a", 1.005), ("a", 2.005)]
    assert len(scheduler) == 0  # both returned None in the end


def test_deadlines_within_the_window_run_in_one_pass() -> None:
    scheduler = Scheduler(clock=lambda: 0.0)
    log: list[tuple[str, float]] = []
    scheduler.add(Clocked("a", log, 1.0, 1), 1.000)
    scheduler.add(Clocked("b", log, 1.0, 1), 1.004)
    scheduler.add(Clocked("c", log, 1.0, 1), 1.010)
    scheduler.tick(1.0)
    assert [name for name, _ in log] == ["a", "b"]


def test_a_cancelled_entry_never_runs_and_lets_go_of_its_object() -> None:
    scheduler = Scheduler(clock=lambda: 0.0)
    log: list[tuple[str, float]] = []
    entry = scheduler.add(Clocked("a", log, 1.0, 5), 1.0)
    cancel(entry)
    assert entry[2] is None
    scheduler.tick(10.0)
    assert log == []
    assert len(scheduler) == 0


async def test_one_timer_runs_the_heap_on_the_loops_clock() -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    scheduler = Scheduler()
    log: list[tuple[str, float]] = []
    start = loop.time()
    first = Clocked("a", log, 0.05, 3)
    first.next = start
    scheduler.add(first, start)
    await asyncio.sleep(0.3)
    assert [name for name, _ in log] == ["a", "a", "a"]
    assert log[2][1] - log[0][1] >= 0.1 - 2 * Scheduler.COALESCE


class Failing:
    def due(self, now: float) -> float | None:
        raise RuntimeError("broken")


def test_one_failing_clock_leaves_the_heap_and_the_others_run_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = Scheduler(clock=lambda: 0.0)
    log: list[tuple[str, float]] = []
    scheduler.add(Failing(), 1.0)
    scheduler.add(Clocked("a", log, 1.0, 2), 1.0)
    scheduler.tick(1.0)
    scheduler.tick(2.0)
    assert [name for name, _ in log] == ["a", "a"]
    assert len(scheduler) == 0
    assert "scheduled call failed" in caplog.text
