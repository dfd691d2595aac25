"""Reconnect delays: exponential backoff with full jitter, socket-free and seedable.

Attempt n (counting from 0) waits a uniformly random time between `initial` and
`min(maximum, initial * 2 ** (n + 1))`: the window doubles until it reaches `maximum`, and the
whole window is used (full jitter), so replicas that lost the same upstream at the same moment
spread their reconnects instead of stampeding it. The floor at `initial` keeps even a
pathological run of small random draws from turning into a hot loop.
"""

from __future__ import annotations

import random

#: Past this many doublings the window is at `maximum` for any sane setting; avoids overflow.
_MAX_DOUBLINGS = 62


class Backoff:
    """The delays before successive reconnect attempts of one connection."""

    __slots__ = ("_random", "attempts", "initial", "maximum")

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if not 0 < initial <= maximum:
            raise ValueError("backoff needs 0 < initial <= maximum")
        self.initial = initial
        self.maximum = maximum
        self._random = rng or random.Random()
        #: Delays handed out since the last reset.
        self.attempts = 0

    def ceiling(self) -> float:
        """The upper end of the next delay's window."""
        doublings = min(self.attempts + 1, _MAX_DOUBLINGS)
        return min(self.maximum, self.initial * 2.0**doublings)

    def next(self) -> float:
        """The delay before the next attempt; each call widens the window."""
        delay = self._random.uniform(self.initial, self.ceiling())
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """The connection proved stable: the next failure starts from `initial` again."""
        self.attempts = 0
