"""The lifecycle both Redis backplanes share: one background task, its start and close, and `up`.

A replicated backplane serves local rooms at once and connects to Redis in the background:
`start` does not wait for Redis (the process serves and /readyz says 503 meanwhile), and
`close` gives queued messages a moment to reach Redis before it disconnects. `up` (/readyz)
and wsrelay_backplane_up change together, in `_set_up`; a message that cannot go out is
counted in `dropped`, labelled by its route template. What differs, how to connect, subscribe
and publish and when the backplane is up, is the subclasses' (`.redis`, `.redis_cluster`).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

from ..frames import OP_BINARY, OP_TEXT
from ..metrics import Metrics
from . import envelope
from .base import Backplane

#: How long `close` waits for queued messages to reach Redis.
FLUSH_TIMEOUT: Final = 1.0


class ReplicatedBackplane(Backplane):
    """Local rooms (the base class) plus a task that keeps this replica connected to Redis."""

    def __init__(self, metrics: Metrics, where: str) -> None:
        super().__init__(metrics)
        self.up = False
        #: This process in every envelope it sends, so the copy Redis hands back is skipped.
        self.node = envelope.new_node_id()
        self._headers = {op: envelope.header(self.node, op) for op in (OP_TEXT, OP_BINARY)}
        #: Where Redis is, for logs: never the URL, which may hold a password.
        self.where = where
        self._supervisor: asyncio.Task[None] | None = None

    # -- what subclasses provide -----------------------------------------------------------------
    async def _supervise(self) -> None:
        """Connect, subscribe and reconnect until cancelled: the task `start` runs."""
        raise NotImplementedError

    async def flush(self, timeout: float) -> bool:
        """Wait until Redis has confirmed every queued message; False if not within `timeout`."""
        raise NotImplementedError

    async def _disconnect(self) -> None:
        """Close what outlives the supervisor task (nothing unless a subclass says so)."""

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start connecting in the background: the process serves (and says 503) meanwhile."""
        self._set_up(False)
        self._supervisor = asyncio.create_task(self._supervise(), name="wsrelay-backplane")

    async def close(self) -> None:
        """Give queued messages a moment to reach Redis, then disconnect."""
        await self.flush(FLUSH_TIMEOUT)
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
            self._supervisor = None
        await self._disconnect()
        self._set_up(False)

    # -- connection state ------------------------------------------------------------------------
    def _set_up(self, up: bool) -> None:
        self.up = up
        self.metrics.backplane_up.set(1 if up else 0)

    def dropped(self, room: str) -> None:
        """Count a message for `room` that could not reach Redis."""
        # The room key is "<route template>#<room>": the metric is labelled by template.
        self.metrics.route(room.partition("#")[0]).dropped("backplane")
