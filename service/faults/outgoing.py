"""What a faulted connection writes: frames dropped, delayed, fragmented, paced, then written.

Every frame the connection sends comes here instead of going to its transport: data messages
(`frame`, or pre-encoded bytes through `write`) and control frames alike, so nothing overtakes
a delayed message and no control frame lands inside a frame being paced out. Frames wait in
one FIFO with the time each may leave; the loop's `Timers` wake the connection when its head
is due, never a task of its own. Bytes waiting here count as the connection's send queue
(`buffered`), so SEND_QUEUE_BYTES still cuts a delayed or throttled client at 1008 and
`over_high`/`wait_low` give a sender the backpressure a slow link would.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Any

from .. import frames
from ..timers import Entry, Timers
from .framing import FrameScanner, fragment, frame_bytes
from .shaping import Pace, Schedule

#: A queue item that ends the connection without a close frame when it reaches the head.
ABORT = None
#: A queue item's state: new; held back by the pace; partly written (it must be finished).
FRESH, HELD, STARTED = 0, 1, 2
#: The first byte's bit of a compressed message (permessage-deflate).
RSV1 = 0x40

Count = Callable[[str], None]


class Outgoing:
    """One connection's outgoing frames under its faults, in front of its transport."""

    __slots__ = (
        "_entry",
        "_flush_callbacks",
        "_fragment",
        "_low_waiter",
        "_no_pong",
        "_pace",
        "_queue",
        "_scanner",
        "_schedule",
        "_timers",
        "count",
        "ended",
        "high",
        "hung",
        "low",
        "on_abort",
        "queued",
        "transport",
    )

    def __init__(
        self,
        transport: asyncio.Transport,
        timers: Timers,
        count: Count,
        *,
        schedule: Schedule | None = None,
        pace: Pace | None = None,
        fragment_size: int = 0,
        no_pong: bool = False,
    ) -> None:
        self.transport = transport
        self._timers = timers
        self.count = count
        self._schedule = schedule
        self._pace = pace
        self._fragment = fragment_size
        self._no_pong = no_pong
        self._scanner = FrameScanner()
        self._queue: deque[list[Any]] = deque()  # [due, frame bytes or ABORT, state]
        #: Frame bytes waiting here, not yet given to the transport.
        self.queued = 0
        self.low, self.high = transport.get_write_buffer_limits()
        self._entry: Entry | None = None
        self._low_waiter: asyncio.Future[None] | None = None
        self._flush_callbacks: list[Callable[[], object]] = []
        #: True once nothing is written any more: aborted, hung, or the transport is gone.
        self.ended = False
        #: True once the hang fault stopped this connection's reading and writing.
        self.hung = False
        #: Told just before the abort fault drops the connection.
        self.on_abort: Callable[[], object] | None = None

    # -- what the connection sends -------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Pre-encoded frames (one, several, or part of one): each takes the per-message path."""
        for first, payload in self._scanner.feed(data):
            self.frame(first, payload)

    def frame(self, first: int, payload: bytes) -> None:
        """One frame, by its first byte (FIN, RSV bits, opcode) and payload."""
        if self.ended:
            return
        opcode = first & 0x0F
        now = self._timers.time()
        schedule = self._schedule
        if opcode >= frames.OP_CLOSE:
            if opcode == frames.OP_PONG and self._no_pong:
                self.count("no_pong")
                return
            due = now if schedule is None else schedule.control(now)
            data = frame_bytes(first, payload)
            if not self._queue and due <= now:
                self._write(data)  # a control frame is never paced: at most 127 bytes
            else:
                self._push(now, due, data)
            return
        due = now
        if schedule is not None:
            planned = schedule.message(now, kept=bool(first & RSV1))
            if planned is None:
                self.count("drop")
                return
            if schedule.delays:
                self.count("delay")
            due = planned
        if self._fragment and len(payload) > self._fragment:
            self.count("fragment")
            for piece in fragment(first, payload, self._fragment):
                self._push(now, due, piece)
        else:
            self._push(now, due, frame_bytes(first, payload))

    def dropped_before_compression(self) -> bool:
        """Whether a message about to be compressed is dropped (then counted). With context
        takeover the peer's inflater must see every compressed message, so the drop is decided
        before compression; `frame` then only delays it."""
        if self._schedule is not None and self._schedule.dropped():
            self.count("drop")
            return True
        return False

    def abort_after_queued(self) -> None:
        """End the connection without a close frame once what is queued has been written."""
        if self.ended:
            return
        now = self._timers.time()
        due = now if self._schedule is None else self._schedule.control(now)
        self._queue.append([due, ABORT, FRESH])
        if len(self._queue) == 1:
            self._release()

    def _push(self, now: float, due: float, data: bytes) -> None:
        queue = self._queue
        if not queue and due <= now and self._pace is None:
            self._write(data)  # nothing waits and nothing holds it: straight to the transport
            return
        queue.append([due, data, FRESH])
        self.queued += len(data)
        if len(queue) == 1:
            self._release()

    # -- the queue -----------------------------------------------------------------------------
    def _release(self) -> None:
        """Write what is due, pace permitting; wake up again when the head is due."""
        self._entry = None
        queue = self._queue
        now = self._timers.time()
        pace = self._pace
        while queue and not self.ended:
            item = queue[0]
            due, data = item[0], item[1]
            if due > now:
                self._entry = self._timers.call_at(due, self._release)
                break
            if data is ABORT:
                self.abort()
                return
            if pace is not None:
                allowed, back = pace.take(now, len(data))
                if allowed < len(data):
                    if item[2] == FRESH:
                        item[2] = HELD
                        self.count("throttle")
                    if allowed:
                        self._write(data[:allowed])
                        item[1] = data[allowed:]
                        item[2] = STARTED
                        self.queued -= allowed
                    self._entry = self._timers.call_at(back, self._release)
                    break
            queue.popleft()
            self.queued -= len(data)
            self._write(data)
        self._check_waiters()

    def _write(self, data: bytes) -> None:
        if self.transport.is_closing():
            self.stop()
            return
        self.transport.write(data)

    def _check_waiters(self) -> None:
        waiter = self._low_waiter
        if waiter is not None and (self.ended or self.queued <= self.low):
            self._low_waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._flush_callbacks and (self.ended or not self._queue):
            callbacks, self._flush_callbacks = self._flush_callbacks, []
            for callback in callbacks:
                callback()

    # -- flow control --------------------------------------------------------------------------
    @property
    def buffered(self) -> int:
        """Bytes the connection has sent that the peer has not been given: here and in the
        transport. SEND_QUEUE_BYTES bounds this."""
        return self.queued + self.transport.get_write_buffer_size()

    @property
    def over_high(self) -> bool:
        """More is waiting than the transport's high-water mark: a sender should wait."""
        return self.queued + self.transport.get_write_buffer_size() > self.high

    async def wait_low(self) -> None:
        """Until what waits here is down to the low-water mark (or the connection ended)."""
        if self.ended or self.queued <= self.low:
            return
        if self._low_waiter is None:
            self._low_waiter = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._low_waiter)

    def when_flushed(self, callback: Callable[[], object]) -> None:
        """Call `callback()` once everything queued so far has been given to the transport (or
        the connection ended): what ends a TCP connection waits for this."""
        if self.ended or not self._queue:
            callback()
        else:
            self._flush_callbacks.append(callback)

    async def flushed(self) -> None:
        """Until everything queued so far has been given to the transport (or it ended)."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def done() -> None:
            if not waiter.done():
                waiter.set_result(None)

        self.when_flushed(done)
        await waiter

    # -- ends ----------------------------------------------------------------------------------
    def abort(self) -> None:
        """Drop the TCP connection now, with no close frame: the peer sees 1006."""
        if self.ended or self.transport.is_closing():
            self.stop()
            return
        self.stop()
        self.count("abort")
        if self.on_abort is not None:
            self.on_abort()
        self.transport.abort()

    def hang(self) -> None:
        """Stop reading and writing, keep TCP open: a half-dead server."""
        if self.ended:
            return
        self.stop()
        self.hung = True
        self.count("hang")
        self.transport.pause_reading()

    def discard(self) -> None:
        """Forget what waits (a slow consumer being cut): its close frame need not wait behind
        it. A frame partly written already is finished, or the stream would be corrupt."""
        queue = self._queue
        head = queue[0] if queue and queue[0][2] == STARTED else None
        queue.clear()
        self.queued = 0
        if head is not None:
            queue.append(head)
            self.queued = len(head[1])
        else:
            Timers.cancel(self._entry)
            self._entry = None
        if self._schedule is not None:
            self._schedule.restart(self._timers.time())
        self._check_waiters()

    def stop(self) -> None:
        """Write nothing more; what waits is discarded."""
        self.ended = True
        self._queue.clear()
        self.queued = 0
        Timers.cancel(self._entry)
        self._entry = None
        self._check_waiters()
