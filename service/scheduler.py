"""One heap of deadlines and ONE timer handle for every per-connection clock of an event loop.

What `KeepaliveScheduler` does for pings, for any clock a connection needs (a stream's next
message, ...): ten thousand streams cost ten thousand small heap entries, not ten thousand
tasks or timers. A `Timed` object says when it is next due; when that comes, `due(now)` does
its work and returns the next deadline, or None to leave the heap.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any, Protocol

NEVER = float("inf")
log = logging.getLogger("wsrelay.scheduler")


class Timed(Protocol):
    """Something with a clock: `due` does what has come by `now`, returns the next deadline."""

    def due(self, now: float) -> float | None: ...


#: A place in the heap: [deadline, sequence, the Timed or None once cancelled]. Plain lists
#: compare fast in C, which is what a heap of ten thousand entries does most.
Entry = list[Any]


def cancel(entry: Entry) -> None:
    """Let go of the entry's object at once (the empty entry stays until its deadline)."""
    entry[2] = None


class Scheduler:
    """Runs `Timed` objects at their deadlines from one timer on the loop's clock.

    A test passes `clock` and calls `tick(now)` itself; no timer is armed then.
    """

    #: Deadlines this close together run in one pass: fewer wakeups, and a `Timed` is asked
    #: with the end of the window so it does then what would come within it.
    COALESCE = 0.005

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._heap: list[Entry] = []
        self._seq = itertools.count()
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = NEVER

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, timed: Timed, deadline: float) -> Entry:
        """Run `timed.due` at `deadline` (and then at what it returns) until it returns None."""
        entry: Entry = [deadline, next(self._seq), timed]
        heapq.heappush(self._heap, entry)
        self._arm(deadline)
        return entry

    def tick(self, now: float) -> None:
        """Run everything due by `now` (the timer calls this; tests call it too)."""
        heap = self._heap
        limit = now + self.COALESCE
        due: list[Entry] = []
        while heap and heap[0][0] <= limit:
            due.append(heapq.heappop(heap))
        for entry in due:
            timed = entry[2]
            if timed is None:
                continue
            try:
                deadline = timed.due(limit)
            except Exception:  # one failing clock must not stop every other one
                log.exception("scheduled call failed")
                continue
            if deadline is not None and entry[2] is not None:
                entry[0] = deadline
                entry[1] = next(self._seq)
                heapq.heappush(heap, entry)

    def _arm(self, deadline: float) -> None:
        if self._clock is not None or deadline >= self._timer_at:
            return  # a test clock drives tick() itself; an earlier timer is already set
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_at(deadline, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = NEVER
        self.tick(asyncio.get_running_loop().time())
        if self._heap:
            self._arm(self._heap[0][0])


_schedulers: dict[asyncio.AbstractEventLoop, Scheduler] = {}


def loop_scheduler() -> Scheduler:
    """The running loop's scheduler (one per loop, made on first use)."""
    loop = asyncio.get_running_loop()
    scheduler = _schedulers.get(loop)
    if scheduler is None:
        for closed in [known for known in _schedulers if known.is_closed()]:
            del _schedulers[closed]
        scheduler = _schedulers[loop] = Scheduler()
    return scheduler


__all__ = ["NEVER", "Entry", "Scheduler", "Timed", "cancel", "loop_scheduler"]
