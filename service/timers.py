"""One timer heap per event loop for one-shot deadlines: the faults' delayed frames, throttled
slices, close_in, abort_in and hang_in, and the stream mode's wheel slots.

A caller holds a few heap entries, never a task or a timer handle of its own, so ten thousand
delayed connections cost ten thousand small lists and ONE `TimerHandle`. Cancelling empties an
entry in place; the heap drops it when its time comes.

`keepalive.KeepaliveScheduler` is the same idea kept apart on purpose: its entries hold the
connection itself, not a callback, and are re-pushed lazily with the connection's new deadline
when they come due, so activity costs nothing per message and every open connection sits in
its heap at the price measured for idle memory (a heap of callbacks would add an object per
idle connection); a test clock drives its `tick` without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Callable
from typing import Any

from .perloop import PerLoop

log = logging.getLogger("wsrelay.timers")

#: Deadlines this close together run in one batch: fewer wakeups, and no visible difference
#: next to the delays and paces a client can ask for (milliseconds at the finest).
COALESCE = 0.0005
NEVER = float("inf")

Entry = list[Any]  # [when, sequence, callback or None]


class Timers:
    """Deadlines on one event loop, served by one timer handle armed at the earliest."""

    __slots__ = ("_heap", "_loop", "_seq", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._heap: list[Entry] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = NEVER

    def __len__(self) -> int:
        return len(self._heap)

    def time(self) -> float:
        return self._loop.time()

    def call_at(self, when: float, callback: Callable[[], object]) -> Entry:
        """Run `callback()` at `when` (the loop's clock); keep the entry to `cancel` it."""
        entry = [when, next(self._seq), callback]
        heapq.heappush(self._heap, entry)
        self._arm(when)
        return entry

    @staticmethod
    def cancel(entry: Entry | None) -> None:
        """The entry's callback will not run (a no-op for one that ran or is None)."""
        if entry is not None:
            entry[2] = None

    def _fire(self) -> None:
        self._timer = None
        self._timer_at = NEVER
        heap = self._heap
        limit = self._loop.time() + COALESCE
        due = []
        while heap and heap[0][0] <= limit:
            callback = heapq.heappop(heap)[2]
            if callback is not None:
                due.append(callback)
        while heap and heap[0][2] is None:  # cancelled entries at the top: gone now
            heapq.heappop(heap)
        for callback in due:
            try:
                callback()
            except Exception:  # one connection's failure must not stop the others' timers
                log.exception("timer callback failed")
        if heap:
            self._arm(heap[0][0])

    def _arm(self, when: float) -> None:
        """The one timer handle fires at `when`, unless it fires earlier already."""
        if when < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer_at = when
            self._timer = self._loop.call_at(when, self._fire)


#: The `Timers` of a loop (the running loop by default), made on first use.
loop_timers = PerLoop(Timers).get
