"""The faults of one connection: its seeded generator, its outgoing frames, its timed ends.

Built once at the handshake from the connection's effective `Faults` (route defaults, or the
query on a route with `query_overrides`); a connection whose faults leave what the server
sends untouched (`Faults.sends_plain`) gets none of this and keeps the plain path. The
connection tells it of each client message (`message_received`) and, when close_after or
abort_after is due, once that message has been handled (`act`). Time-based faults (close_in,
abort_in, hang_in) are entries in the loop's one timer heap, cancelled when the connection
ends (`stop`).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Callable

from ..timers import Entry, Timers
from .outgoing import Count, Outgoing
from .params import Faults
from .shaping import Pace, Schedule

#: How long a hung connection keeps its TCP connection open before it is dropped: longer than
#: any client's detection timeout worth testing, short enough that hung connections cannot pile
#: up for good.
HANG_LIMIT = 300.0

#: The generator of every connection whose faults draw nothing (Schedule draws only for
#: drop and jitter).
_NO_DRAWS = random.Random(0)

#: Closes the connection with a close frame: `close(code, reason)`; False if it was closing
#: already (then nothing was injected).
Close = Callable[[int, str], bool]


def connection_seed(faults: Faults) -> int:
    """The connection's seed: the one asked for, or a fresh one to log for a replay."""
    return faults.seed if faults.seed is not None else secrets.randbits(32)


class ConnectionFaults:
    """What one faulted connection does differently, and the timers that make it happen."""

    __slots__ = (
        "_close",
        "_entries",
        "_hang_ended",
        "_timers",
        "count",
        "faults",
        "hang_over",
        "on_hang_over",
        "output",
        "received",
        "seed",
    )

    def __init__(
        self,
        faults: Faults,
        transport: asyncio.Transport,
        timers: Timers,
        count: Count,
        close: Close,
        seed: int | None = None,
    ) -> None:
        self.faults = faults
        self.seed = connection_seed(faults) if seed is None else seed
        self.count = count
        self._close = close
        self._timers = timers
        schedule = None
        if faults.delay or faults.jitter or faults.drop:
            # A generator holds about 3 kB of state: a connection that draws nothing (delay
            # alone) shares one that is never drawn from.
            rng = random.Random(self.seed) if faults.jitter or faults.drop else _NO_DRAWS
            schedule = Schedule(rng, faults.delay, faults.jitter, faults.drop)
        self.output = Outgoing(
            transport,
            timers,
            count,
            schedule=schedule,
            pace=Pace(faults.throttle) if faults.throttle else None,
            fragment_size=faults.fragment,
            no_pong=faults.no_pong,
        )
        #: Client messages handled so far.
        self.received = 0
        #: True once a hang's limit has dropped the TCP connection.
        self.hang_over = False
        #: Told when a hang's limit has dropped the TCP connection.
        self.on_hang_over: Callable[[], object] | None = None
        self._hang_ended: asyncio.Future[None] | None = None
        now = timers.time()
        self._entries: list[Entry] = []
        if faults.close_after == 0:  # after no message at all: at once
            self._entries.append(timers.call_at(now, self.close))
        if faults.abort_after == 0:
            self._entries.append(timers.call_at(now, self.output.abort_after_queued))
        if faults.close_in is not None:
            self._entries.append(timers.call_at(now + faults.close_in, self.close))
        if faults.abort_in is not None:
            self._entries.append(timers.call_at(now + faults.abort_in, self.output.abort))
        if faults.hang_in is not None:
            self._entries.append(timers.call_at(now + faults.hang_in, self.hang))

    def message_received(self) -> bool:
        """Count a client message; True when close_after or abort_after is due once it has
        been handled (then call `act`)."""
        self.received += 1
        return self.received == self.faults.close_after or self.received == self.faults.abort_after

    def act(self, received: int | None = None) -> None:
        """The message that made close_after or abort_after due (the `received`th, by
        default the last) has been handled."""
        faults = self.faults
        nth = self.received if received is None else received
        if faults.close_after == nth:
            self.close()
        if faults.abort_after == nth:
            self.output.abort_after_queued()

    def close(self) -> None:
        """Close with the configured code and reason, after what is queued."""
        if not self.output.ended and self._close(self.faults.close_code, self.faults.close_reason):
            self.count("close")

    @property
    def hanging(self) -> bool:
        """Hung, and the TCP connection still open: nothing may end it but the hang's limit."""
        return self.output.hung and not self.hang_over

    def hang(self) -> None:
        """Go silent; after HANG_LIMIT the TCP connection is dropped after all."""
        if self.output.ended:
            return
        self.output.hang()
        self._timers.call_at(self._timers.time() + HANG_LIMIT, self.end_hang)

    def end_hang(self) -> None:
        """Drop a hung connection's TCP connection: its limit has come, or the process stops."""
        if self.hang_over:
            return
        self.hang_over = True
        self.output.transport.abort()
        if self.on_hang_over is not None:
            self.on_hang_over()
        if self._hang_ended is not None and not self._hang_ended.done():
            self._hang_ended.set_result(None)

    async def hang_ended(self) -> None:
        """Until the hang's limit has dropped the TCP connection."""
        if self.hang_over:
            return
        if self._hang_ended is None:
            self._hang_ended = asyncio.get_running_loop().create_future()
        await asyncio.shield(self._hang_ended)

    def stop(self) -> None:
        """The connection is over: no timed fault fires any more (a hang's limit still does,
        so a hung TCP connection ends)."""
        for entry in self._entries:
            Timers.cancel(entry)
        self._entries.clear()
