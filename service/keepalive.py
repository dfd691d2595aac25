"""Keepalive: pings with a payload for real round-trip times, ping and idle timeouts.

`Keepalive` is the per-connection policy, socket-free and driven by explicit clock values so it
is tested without sleeping. `KeepaliveScheduler` serves every connection of a process from one
heap and ONE timer handle: ten thousand idle connections cost ten thousand small heap entries,
not ten thousand timers or tasks.
"""

from __future__ import annotations

import asyncio
import enum
import heapq
import itertools
import struct
from collections.abc import Callable
from typing import Any, Protocol

_PAYLOAD = struct.Struct("!Q").pack
#: A deadline that never comes (one shared float, not one per connection).
NEVER = float("inf")
_payload_counter = itertools.count(1)


class Action(enum.Enum):
    """What the scheduler must do for a connection whose deadline has come."""

    PING = "ping"
    PING_TIMEOUT = "ping_timeout"
    IDLE_TIMEOUT = "idle_timeout"


class Keepalive:
    """Deadlines of one connection: the next ping, the pong it waits for, and idleness.

    `interval` 0 turns pings off; `idle_timeout` None turns the idle check off. Activity is a
    counter the connection already keeps (messages received), sampled when a deadline comes, so
    the hot path pays nothing for idle detection.
    """

    __slots__ = (
        "_activity_seen",
        "_idle_deadline",
        "_next_ping",
        "_ping_sent_at",
        "_wake",
        "entry",
        "idle_timeout",
        "interval",
        "latency",
        "ping_payload",
        "timeout",
    )

    def __init__(
        self, now: float, interval: float, timeout: float, idle_timeout: float | None = None
    ) -> None:
        self.interval = interval
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.ping_payload: bytes | None = None
        #: The last measured round trip in seconds, None until the first pong.
        self.latency: float | None = None
        self._ping_sent_at = 0.0
        self._next_ping = now + interval if interval > 0 else NEVER
        self._idle_deadline = now + idle_timeout if idle_timeout else NEVER
        self._activity_seen = 0
        self._wake = min(self._next_ping, self._idle_deadline)
        #: The scheduler's heap entry for this connection, emptied when the connection ends.
        self.entry: list[Any] | None = None

    @property
    def deadline(self) -> float:
        """When `poll` has something to do next (infinity: never)."""
        return self._wake

    def poll(self, now: float, activity: int) -> Action | None:
        """Decide what is due at `now`; `activity` is the connection's received-message count."""
        action = None
        if self.idle_timeout:
            if activity != self._activity_seen:
                self._activity_seen = activity
                self._idle_deadline = now + self.idle_timeout
            elif now >= self._idle_deadline:
                action = Action.IDLE_TIMEOUT
        if action is not None:
            pass
        elif self.ping_payload is not None:
            if now >= self._ping_sent_at + self.timeout:
                action = Action.PING_TIMEOUT
        elif now >= self._next_ping:
            self.ping_payload = _PAYLOAD(next(_payload_counter))
            self._ping_sent_at = now
            self._next_ping = now + self.interval
            action = Action.PING
        # Next look: the pong's deadline while one is awaited, and the next ping's time too,
        # since a pong that comes in between is not seen by the scheduler.
        wake = self._idle_deadline
        if self.ping_payload is not None:
            wake = min(wake, self._ping_sent_at + self.timeout)
        if self._next_ping > now:
            wake = min(wake, self._next_ping)
        self._wake = wake
        return action

    def on_pong(self, payload: bytes, now: float) -> float | None:
        """Match a pong against the outstanding ping; return the round trip if it matches."""
        if payload != self.ping_payload or self.ping_payload is None:
            return None  # unsolicited pong (RFC 6455 5.5.3 allows them): no measurement
        self.ping_payload = None
        self.latency = now - self._ping_sent_at
        return self.latency


class Pingable(Protocol):
    """What the scheduler needs from a connection."""

    @property
    def keepalive(self) -> Keepalive: ...

    @property
    def activity(self) -> int: ...

    @property
    def closed(self) -> bool: ...

    def keepalive_due(self, action: Action) -> None: ...


class KeepaliveScheduler:
    """One heap of deadlines and one timer for every connection of an event loop.

    Entries are lazy: a connection's entry is re-pushed with its new deadline when popped, so
    nothing is done per message. `discard` empties a closed connection's entry at once (the
    heap then holds a small list until that deadline, not the connection and its buffers).
    """

    #: Deadlines this close together fire in one batch: fewer wakeups, same precision in practice.
    COALESCE = 0.005

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._heap: list[list[Any]] = []  # [deadline, sequence, connection or None]
        self._seq = itertools.count()
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = NEVER

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, conn: Pingable) -> None:
        """Start serving `conn` until `discard(conn)` or until `conn.closed` is seen."""
        deadline = conn.keepalive.deadline
        if deadline != NEVER:
            self._push(conn, deadline)
            self._arm(deadline)

    @staticmethod
    def discard(conn: Pingable) -> None:
        """Stop serving `conn` now: its entry no longer holds it (whichever scheduler's)."""
        entry = conn.keepalive.entry
        if entry is not None:
            entry[2] = None
            conn.keepalive.entry = None

    def _push(self, conn: Pingable, deadline: float) -> None:
        entry = [deadline, next(self._seq), conn]
        conn.keepalive.entry = entry
        heapq.heappush(self._heap, entry)

    def tick(self, now: float) -> None:
        """Run every deadline that has come by `now` (the timer calls this; tests call it too)."""
        heap = self._heap
        limit = now + self.COALESCE
        due: list[Pingable] = []
        while heap and heap[0][0] <= limit:
            conn = heapq.heappop(heap)[2]
            if conn is not None:
                due.append(conn)
        for conn in due:
            conn.keepalive.entry = None
            if conn.closed:
                continue
            keepalive = conn.keepalive
            action = keepalive.poll(now, conn.activity)
            if action is not None:
                conn.keepalive_due(action)
                if conn.closed or action is not Action.PING:
                    continue
            deadline = keepalive.deadline
            if deadline != NEVER:
                self._push(conn, deadline)

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
