"""Reconnect delays: exponential, capped, with jitter so replicas do not retry in lockstep."""

from __future__ import annotations

import random


class Backoff:
    """Delays of initial, 2x, 4x ... up to `maximum`, each drawn from the upper half of its step.

    The jitter spreads the reconnects of many replicas after a shared outage; keeping the lower
    half out means a delay never collapses to zero and hammers a server that is still down.
    """

    def __init__(self, initial: float, maximum: float) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"need 0 < initial ({initial}) <= maximum ({maximum})")
        self.initial = initial
        self.maximum = maximum
        self.attempts = 0

    def next(self) -> float:
        """The delay before the next attempt; each call counts one more failed attempt."""
        ceiling = min(self.maximum, self.initial * 2 ** min(self.attempts, 32))
        self.attempts += 1
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """A connection succeeded: the next outage starts again from `initial`."""
        self.attempts = 0
