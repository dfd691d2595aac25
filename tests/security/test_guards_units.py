"""The handshake rate limit and the descriptor budget, driven by explicit clocks and counts."""

from __future__ import annotations

import pytest

from service.fdguard import FdBudget
from service.ratelimit import HandshakeLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_refills_it() -> None:
    clock = Clock()
    limiter = HandshakeLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.allow("10.0.0.1") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("10.0.0.1") == pytest.approx(0.5)
    assert limiter.allow("10.0.0.2") == 0.0  # another address has its own bucket
    clock.now += 0.5
    assert limiter.allow("10.0.0.1") == 0.0
    clock.now += 60  # a long pause refills to the burst, never beyond
    assert [limiter.allow("10.0.0.1") for _ in range(4)][-1] > 0


def test_the_limiter_forgets_the_least_recent_addresses_beyond_its_bound() -> None:
    limiter = HandshakeLimiter(rate=1.0, burst=1, max_addresses=100, clock=Clock())
    for n in range(1000):
        limiter.allow(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100


def test_the_budget_keeps_the_reserve_free() -> None:
    clock = Clock()
    opened = {"count": 10}
    budget = FdBudget(reserve=8, limit=lambda: 30, count=lambda: opened["count"], clock=clock)
    admitted = 0
    while budget.admit():
        admitted += 1
        opened["count"] += 1
    assert admitted == 30 - 8 - 10
    opened["count"] = 12  # connections went away: the next reading admits again
    clock.now += 1
    assert budget.admit()


def test_far_from_the_limit_the_budget_reads_descriptors_at_most_once_a_second() -> None:
    clock = Clock()
    reads: list[int] = []

    def count() -> int:
        reads.append(1)
        return 50

    budget = FdBudget(reserve=32, limit=lambda: 100_000, count=count, clock=clock)
    for _ in range(1000):
        assert budget.admit()
    assert len(reads) == 1
    clock.now += 1.0
    budget.admit()
    assert len(reads) == 2
