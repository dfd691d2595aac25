"""One master of a Redis Cluster as the cluster backplane sees it: a subscriber and a publisher.

The link subscribes (SSUBSCRIBE, one channel per command: a command's channels must share a
slot) the rooms the backplane assigns to it, reads what the other replicas publish there, and
sends this process's messages as pipelined SPUBLISH batches, as the single-Redis backplane does
(`.redis`). Each link connects, fails and reconnects on its own, with its own backoff, so one
dead master delays no other; it reports to its owner (`ShardOwner`) whenever the cluster may
have moved something: its connection failed (a failover may follow), Redis took a channel
away (SUNSUBSCRIBE push when a slot migrates) or refused one (MOVED). The owner then reads the
slot map again and moves rooms between links.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from ..backoff import Backoff
from . import envelope
from .redis import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    BATCH,
    MAX_PENDING,
    MAX_PENDING_BYTES,
    PING_INTERVAL,
    REPLY_TIMEOUT,
    SILENCE_TIMEOUT,
)

log = logging.getLogger("wsrelay.backplane")

_Pending = tuple[str, bytes]  # room, RESP SPUBLISH command
#: Replies that are pushes of the subscriber connection (RESP2 arrays).
_MESSAGE: Final = b"smessage"
_UNSUBSCRIBED: Final = b"sunsubscribe"


class ShardOwner(Protocol):
    """What a link needs from the backplane that owns it."""

    node: bytes

    def deliver(self, room: str, opcode: int, payload: bytes, exclude: Any) -> None: ...

    def topology_changed(self) -> None: ...

    def link_state_changed(self) -> None: ...

    def dropped(self, room: str) -> None: ...


class ShardLink:
    """The connections to one master, and the rooms whose slots it serves."""

    def __init__(
        self, owner: ShardOwner, name: str, connect: Callable[[], AbstractConnection]
    ) -> None:
        self.owner = owner
        self.name = name  # "host:port"
        self.up = False
        self._connect = connect
        #: Assigned channel -> its room, and its slot (to match a MOVED error).
        self.rooms: dict[bytes, str] = {}
        self.slots: dict[bytes, int] = {}
        self._changed: set[bytes] = set()
        self._membership_changed = asyncio.Event()
        self._subscribed: set[bytes] = set()
        self._unsubscribing: set[bytes] = set()
        self._pending: deque[_Pending] = deque()
        self._pending_bytes = 0
        self._in_flight: list[_Pending] = []
        self._writer_wakeup = asyncio.Event()
        self._writer_idle = asyncio.Event()
        self._last_pong = 0.0
        self._backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)
        self._task: asyncio.Task[None] | None = None

    # -- what the backplane calls --------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=f"wsrelay-shard-{self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._drop_queued()
        self.up = False

    def assign(self, channel: bytes, room: str, slot: int) -> None:
        self.rooms[channel] = room
        self.slots[channel] = slot
        self._changed.add(channel)
        self._membership_changed.set()

    def unassign(self, channel: bytes) -> None:
        if self.rooms.pop(channel, None) is not None:
            del self.slots[channel]
            self._changed.add(channel)
            self._membership_changed.set()

    def resync(self) -> None:
        """Subscribe again whatever is assigned but not subscribed (a refused or moved channel
        whose slot the new map still gives this master)."""
        self._changed.update(self.rooms)
        self._membership_changed.set()

    def enqueue(self, room: str, command: bytes) -> bool:
        """Queue one SPUBLISH for the writer; False if the link cannot take it now."""
        if (
            not self.up
            or len(self._pending) >= MAX_PENDING
            or self._pending_bytes + len(command) > MAX_PENDING_BYTES
        ):
            return False
        self._pending.append((room, command))
        self._pending_bytes += len(command)
        self._writer_wakeup.set()
        return True

    async def flush(self, timeout: float) -> bool:
        """Wait until the master confirmed every queued message; False if not within `timeout`."""
        if self.up and (self._pending or self._in_flight):
            self._writer_idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._writer_idle.wait(), timeout)
        return not (self._pending or self._in_flight)

    # -- connection supervision ----------------------------------------------------------------
    async def _supervise(self) -> None:
        while True:
            try:
                await self._session()
            except (RedisError, OSError, EOFError) as error:
                reason = str(error) or type(error).__name__
            except Exception as error:  # a bug must not end the reconnecting for good
                log.exception("backplane shard failed", extra={"event": "backplane_error"})
                reason = repr(error)
            was_up = self.up
            self._set_up(False)
            self._drop_queued()
            self.owner.topology_changed()  # a failover may be under way: read the slot map
            delay = self._backoff.next()
            log.warning(
                "backplane shard lost" if was_up else "backplane shard unreachable",
                extra={
                    "event": "backplane_shard_down",
                    "redis": self.name,
                    "error": reason,
                    "retry_in": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        publisher = self._connect()
        subscriber = self._connect()
        try:
            await publisher.connect()  # type: ignore[no-untyped-call]
            await subscriber.connect()  # type: ignore[no-untyped-call]
            tasks = [
                asyncio.create_task(self._read(subscriber)),
                asyncio.create_task(self._control(subscriber)),
                asyncio.create_task(self._write(publisher)),
            ]
            try:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            for task in done:
                task.result()
        finally:
            await publisher.disconnect(nowait=True)
            await subscriber.disconnect(nowait=True)

    def _set_up(self, up: bool) -> None:
        if up != self.up:
            self.up = up
            self.owner.link_state_changed()

    # -- the subscriber connection -------------------------------------------------------------
    async def _control(self, connection: AbstractConnection) -> None:
        """(Un)subscribe as assignments change, and ping; the replies go to `_read`."""
        loop = asyncio.get_running_loop()
        rooms = self.rooms
        subscribed = self._subscribed = set()
        self._unsubscribing = set()
        self._changed = set(rooms)
        self._last_pong = last_ping = loop.time()
        first = True
        changed = self._membership_changed
        while True:
            changed.clear()
            dirty, self._changed = self._changed, set()
            add = sorted(name for name in dirty if name in rooms and name not in subscribed)
            remove = sorted(name for name in dirty if name not in rooms and name in subscribed)
            for name in add:
                await connection.send_command("SSUBSCRIBE", name, check_health=False)
            for name in remove:
                await connection.send_command("SUNSUBSCRIBE", name, check_health=False)
            subscribed.update(add)
            subscribed.difference_update(remove)
            self._unsubscribing.update(remove)
            now = loop.time()
            if now - self._last_pong > SILENCE_TIMEOUT:
                raise TimeoutError(f"no PONG from {self.name} for {SILENCE_TIMEOUT:g} s")
            if first or now - last_ping >= PING_INTERVAL or add:
                # The PONG comes after the SSUBSCRIBEs above: `_read` then says we are up.
                await connection.send_command("PING", check_health=False)
                last_ping = now
                first = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), PING_INTERVAL)

    async def _read(self, connection: AbstractConnection) -> None:
        """Deliver what other replicas published; notice channels the cluster moved away."""
        loop = asyncio.get_running_loop()
        rooms = self.rooms
        node = self.owner.node
        header = envelope.HEADER_BYTES
        deliver = self.owner.deliver
        while True:
            try:
                reply: Any = await connection.read_response(
                    timeout=math.inf, disconnect_on_error=False
                )
            except ResponseError as error:  # MOVED: an SSUBSCRIBE reached a former owner
                self._refused(error)
                continue
            if type(reply) is list and reply[0] == _MESSAGE:
                room = rooms.get(reply[1])
                data = reply[2]
                if room is None or data[1:header] == node:
                    continue  # a room we just left, or our own message back from Redis
                message = envelope.decode(data)
                if message is None:
                    log.warning("not a wsrelay envelope", extra={"event": "backplane_bad_message"})
                    continue
                deliver(room, message.opcode, message.payload, None)
            elif type(reply) is list and reply[0] == _UNSUBSCRIBED:
                channel = reply[1]
                if channel in self._unsubscribing:
                    self._unsubscribing.discard(channel)
                else:  # not asked for: its slot moved to another master
                    self._subscribed.discard(channel)
                    self.owner.topology_changed()
            elif reply == b"PONG" or (type(reply) is list and reply[0] == b"pong"):
                self._last_pong = loop.time()
                if not self.up:
                    self._backoff.reset()
                    self._set_up(True)

    def _refused(self, error: ResponseError) -> None:
        slot = getattr(error, "slot_id", None)
        if slot is None:
            log.warning(
                "backplane shard refused a subscription",
                extra={"event": "backplane_error", "redis": self.name, "error": str(error)},
            )
            return
        for channel, channel_slot in self.slots.items():
            if channel_slot == slot:
                self._subscribed.discard(channel)
        self.owner.topology_changed()

    # -- the publisher connection --------------------------------------------------------------
    async def _write(self, connection: AbstractConnection) -> None:
        """Send the queue in pipelined batches: one write, then the batch's replies."""
        pending = self._pending
        wakeup = self._writer_wakeup
        while True:
            if not pending:
                self._writer_idle.set()
                wakeup.clear()
                await wakeup.wait()
                continue
            batch = self._in_flight = [pending.popleft() for _ in range(min(BATCH, len(pending)))]
            commands = [command for _, command in batch]
            self._pending_bytes -= sum(map(len, commands))
            await connection.send_packed_command(commands, check_health=False)
            moved = False
            async with asyncio.timeout(REPLY_TIMEOUT):  # one timer for the batch's replies
                for room, _ in batch:
                    try:
                        await connection.read_response(timeout=math.inf)
                    except ResponseError:  # MOVED: the room's slot is served elsewhere now
                        self.owner.dropped(room)
                        moved = True
            self._in_flight = []
            if moved:
                self.owner.topology_changed()

    def _drop_queued(self) -> None:
        """Count what the lost connection did not confirm, and empty the queue."""
        for room, _ in (*self._in_flight, *self._pending):
            self.owner.dropped(room)
        self._in_flight = []
        self._pending.clear()
        self._pending_bytes = 0
