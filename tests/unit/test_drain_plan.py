"""How drain closes are spread into batches."""

from __future__ import annotations

from service.drain import batch_plan


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
