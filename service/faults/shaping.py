"""The decisions behind a faulted connection's outgoing messages, socket-free and driven by
explicit clock values, so tests check them without sleeping.

`Schedule` says whether a message is dropped and when it may leave (delay +- jitter, order
kept), from the connection's own seeded generator: the same seed and the same messages give
the same drops and delays. `Pace` spreads bytes at a steady rate (throttle).
"""

from __future__ import annotations

import random

#: A throttled connection writes one slice per this many seconds: a steady pace, no burst
#: above a twentieth of a second's worth.
PACE_TICK = 0.05


class Schedule:
    """Drop and delay decisions for one connection's messages, in the order they are sent."""

    __slots__ = ("_last", "delay", "drop", "jitter", "rng")

    def __init__(self, rng: random.Random, delay: float, jitter: float, drop: float) -> None:
        self.rng = rng
        self.delay = delay
        self.jitter = jitter
        self.drop = drop
        self._last = 0.0  # when the previous frame may leave: nothing overtakes it

    @property
    def delays(self) -> bool:
        return self.delay > 0 or self.jitter > 0

    def dropped(self) -> bool:
        """Whether the next data message is dropped (one draw per message, when drop is on)."""
        return self.drop > 0 and self.rng.random() < self.drop

    def message(self, now: float, *, kept: bool = False) -> float | None:
        """When a data message sent at `now` may leave, or None: it is dropped. `kept`: the
        drop was decided already, before compression (a compressed message cannot be dropped
        afterwards without breaking the peer's inflater)."""
        rng = self.rng
        if not kept and self.dropped():
            return None
        wait = self.delay
        if self.jitter:
            wait = max(0.0, wait + rng.uniform(-self.jitter, self.jitter))
        due = now + wait
        if due < self._last:
            due = self._last  # jitter never reorders: a message waits for the one before it
        self._last = due
        return due

    def restart(self, now: float) -> None:
        """What waited was discarded: the next frame need not wait for it."""
        self._last = now

    def control(self, now: float) -> float:
        """A control frame (ping, pong, close) is not delayed, but never overtakes a message."""
        due = self._last if self._last > now else now
        self._last = due
        return due


class Pace:
    """At most `rate` bytes per second, in slices of `PACE_TICK` seconds' worth.

    Idle time earns no credit: after a pause the link starts again at the same pace, so no
    burst goes above one slice.
    """

    __slots__ = ("_free_at", "rate", "slice")

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.slice = max(1, round(rate * PACE_TICK))
        self._free_at = 0.0  # when the link has carried everything written so far

    def take(self, now: float, size: int) -> tuple[int, float]:
        """How many of `size` bytes may be written at `now`, and when to come back for more
        (0.0 when all of them may go now)."""
        if self._free_at > now:
            return 0, self._free_at
        count = size if size < self.slice else self.slice
        self._free_at = now + count / self.rate
        return count, 0.0 if count == size else self._free_at
