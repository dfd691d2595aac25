"""The reconnect policy alone: exponential windows, full jitter, a floor, a cap, a reset."""

from __future__ import annotations

import random

import pytest

from service.backoff import Backoff


def test_the_window_doubles_from_initial_until_it_reaches_the_maximum() -> None:
    backoff = Backoff(0.5, 30, random.Random(1))
    ceilings = []
    for _ in range(9):
        ceilings.append(backoff.ceiling())
        backoff.next()
    assert ceilings == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]


def test_every_delay_lies_between_initial_and_its_windows_ceiling() -> None:
    backoff = Backoff(0.2, 5, random.Random(7))
    for _ in range(200):
        ceiling = backoff.ceiling()
        delay = backoff.next()
        assert 0.2 <= delay <= ceiling <= 5


def test_the_jitter_covers_the_whole_window_not_a_fixed_step() -> None:
    rng = random.Random(3)
    delays = []
    for _ in range(500):
        backoff = Backoff(1, 8, rng)
        backoff.attempts = 2  # the window is [1, 8]
        delays.append(backoff.next())
    assert min(delays) < 1.5
    assert max(delays) > 7.5
    assert len({round(delay, 3) for delay in delays}) > 400  # spread, not a handful of values


def test_a_seeded_policy_repeats_itself_and_different_seeds_differ() -> None:
    def run(seed: int) -> list[float]:
        backoff = Backoff(0.5, 30, random.Random(seed))
        return [backoff.next() for _ in range(10)]

    assert run(42) == run(42)
    assert run(42) != run(43)


def test_reset_starts_again_from_the_first_window() -> None:
    backoff = Backoff(0.5, 30, random.Random(5))
    for _ in range(20):
        backoff.next()
    assert backoff.ceiling() == 30
    backoff.reset()
    assert backoff.attempts == 0
    assert 0.5 <= backoff.next() <= 1.0


def test_a_long_outage_never_overflows_and_stays_at_the_cap() -> None:
    backoff = Backoff(0.001, 2, random.Random(9))
    for _ in range(5000):
        assert backoff.next() <= 2
    assert backoff.ceiling() == 2


def test_equal_initial_and_maximum_give_a_constant_delay() -> None:
    backoff = Backoff(3, 3, random.Random(0))
    assert {backoff.next() for _ in range(5)} == {3}


@pytest.mark.parametrize(("initial", "maximum"), [(0, 1), (-1, 1), (2, 1)])
def test_impossible_bounds_are_refused(initial: float, maximum: float) -> None:
    with pytest.raises(ValueError, match="initial"):
        Backoff(initial, maximum)
