"""The handshake step of faults, socket-free: none on a plain route, the seeded reject draw."""

from __future__ import annotations

from service.faults import NO_FAULTS, Faults
from service.faults.handshake import Refused, fault_middleware, new_seed, rejects
from service.faults.params import MAX_SEED


class Counter:
    def __init__(self) -> None:
        self.counted: list[str] = []

    def fault_injected(self, fault: str, count: int = 1) -> None:
        self.counted.append(fault)


def test_a_route_without_faults_or_query_overrides_gets_no_step_at_all() -> None:
    assert fault_middleware(NO_FAULTS, False, Counter()) is None
    assert fault_middleware(Faults(seed=5), False, Counter()) is None  # a seed alone is no fault
    assert fault_middleware(NO_FAULTS, True, Counter()) is not None
    assert fault_middleware(Faults(drop=0.1), False, Counter()) is not None


def test_reject_alone_always_refuses_and_a_rate_is_a_draw_from_the_seed() -> None:
    assert all(rejects(Faults(reject=500), seed) for seed in range(100))
    assert not rejects(NO_FAULTS, 1)
    draws = [rejects(Faults(reject=503, reject_rate=0.25), seed) for seed in range(400)]
    assert 60 <= sum(draws) <= 140  # about a quarter
    assert draws == [rejects(Faults(reject=503, reject_rate=0.25), seed) for seed in range(400)]
    assert all(rejects(Faults(reject=503, reject_rate=1.0), seed) for seed in range(50))


def test_an_injected_refusal_says_so_in_one_line_with_retry_after_on_429_and_503() -> None:
    for status in (429, 503):
        refused = Refused(status)
        assert (refused.status, refused.headers["Retry-After"]) == (status, "1")
    teapot = Refused(418)
    assert teapot.status == 418
    assert "Retry-After" not in teapot.headers
    assert teapot.text == "refused on purpose (reject=418)\n"


def test_random_seeds_are_in_range_and_differ() -> None:
    seeds = {new_seed() for _ in range(50)}
    assert len(seeds) > 45
    assert all(0 <= seed <= MAX_SEED for seed in seeds)
