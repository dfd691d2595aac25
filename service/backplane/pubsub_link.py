"""The two connections a replica keeps to one Redis node: a subscriber and a pipelined publisher.

Shared by the single-Redis backplane (`.redis`, classic SUBSCRIBE/PUBLISH) and by each master's
link of the cluster backplane (`.shard`, SSUBSCRIBE/SPUBLISH), which differ only in the verbs and
in what they do when Redis moves a channel away.

One supervisor task (re)connects with exponential backoff and jitter. Per connection life:
`_control` (un)subscribes the channels in `_rooms_by_channel` as they change and pings;
`_read` delivers what other replicas published (skipping this process's own messages by the
envelope's node id) and says the link is up at the first PONG after every subscription of a
new connection; `_write` sends the queue in pipelined batches, one write and then the batch's
replies under one timer. A dead link is noticed by the missing PONG or the reply timeout; what
it held is counted as dropped, never replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter, deque
from collections.abc import Callable
from typing import Any, ClassVar, Final

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import RedisError, ResponseError

from ..backoff import Backoff
from . import envelope

log = logging.getLogger("wsrelay.backplane")

#: Messages waiting for the publisher (count and bytes); past either, new ones are dropped.
MAX_PENDING: Final = 10_000
MAX_PENDING_BYTES: Final = 16 << 20
#: Commands written to Redis in one go, their replies read after.
BATCH: Final = 256
BACKOFF_INITIAL: Final = 0.1
BACKOFF_MAX: Final = 5.0
#: The subscriber pings this often; no PONG for SILENCE_TIMEOUT means the link is dead.
PING_INTERVAL: Final = 5.0
SILENCE_TIMEOUT: Final = 15.0
CONNECT_TIMEOUT: Final = 5.0
#: A batch of PUBLISH not confirmed within this is a dead link.
REPLY_TIMEOUT: Final = 5.0

Pending = tuple[str, bytes]  # room, RESP command


class PubSubLink:
    """Subscriber and publisher connections to one node; subclasses say what the events mean."""

    #: The verbs and the push that carries a message; channels per (UN)SUBSCRIBE command.
    SUBSCRIBE: ClassVar[str] = "SUBSCRIBE"
    UNSUBSCRIBE: ClassVar[str] = "UNSUBSCRIBE"
    MESSAGE: ClassVar[bytes] = b"message"
    SUBSCRIBE_CHUNK: ClassVar[int] = 500
    #: What the log says when the connections fail: after they were up, before, and its event.
    LOST: ClassVar[str] = "backplane connection lost"
    UNREACHABLE: ClassVar[str] = "backplane unreachable"
    DOWN_EVENT: ClassVar[str] = "backplane_down"

    up: bool
    node: bytes
    #: The node, for logs ("host:port..."): never a URL, which may hold a password.
    where: str

    def _init_link(self, deliver: Callable[[str, int, bytes, Any], None]) -> None:
        self.up = False
        self._deliver = deliver
        self._rooms_by_channel: dict[bytes, str] = {}  # channels to be subscribed -> room
        self._changed_channels: set[bytes] = set()  # joined or left since the last (UN)SUBSCRIBE
        self._membership_changed = asyncio.Event()
        self._subscribed: set[bytes] = set()
        #: UNSUBSCRIBEs sent and not yet confirmed, by channel: any other unsubscribe push is
        #: Redis ending a subscription by itself (a cluster slot moved).
        self._unsubscribing: Counter[bytes] = Counter()
        self._pending: deque[Pending] = deque()
        self._pending_bytes = 0
        self._in_flight: list[Pending] = []
        self._writer_wakeup = asyncio.Event()
        self._writer_idle = asyncio.Event()
        self._last_pong = 0.0
        self._backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)

    # -- what subclasses provide -----------------------------------------------------------------
    def _connection(self) -> AbstractConnection:
        raise NotImplementedError

    def _set_up(self, up: bool) -> None:
        self.up = up

    def _link_up(self) -> None:
        """The first PONG after every subscription of a new connection."""

    def _link_down(self) -> None:
        """The connections failed (the link logged it and tries again after its backoff)."""

    def _dropped(self, room: str) -> None:
        """A message for `room` could not reach Redis."""

    def _unsubscribed(self, channel: bytes) -> None:
        """Redis ended a subscription nobody asked to end (a cluster slot moved)."""

    def _refused(self, error: ResponseError, room: str | None) -> None:
        """Redis answered a command with an error (`room`: that of a refused publish)."""
        raise error

    # -- the queue ---------------------------------------------------------------------------------
    def _subscribe(self, channel: bytes, room: str) -> None:
        self._rooms_by_channel[channel] = room
        self._changed_channels.add(channel)
        self._membership_changed.set()

    def _unsubscribe(self, channel: bytes) -> None:
        if self._rooms_by_channel.pop(channel, None) is not None:
            self._changed_channels.add(channel)
            self._membership_changed.set()

    def _enqueue(self, room: str, command: bytes) -> bool:
        """Queue one command for the writer; False if the link cannot take it now."""
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
        """Wait until Redis has confirmed every queued message; False if not within `timeout`."""
        if self.up and (self._pending or self._in_flight):
            self._writer_idle.clear()  # the writer sets it again once the queue is empty
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
                log.exception("backplane session failed", extra={"event": "backplane_error"})
                reason = repr(error)
            else:  # pragma: no cover - a session only ends by an error
                reason = "session ended"
            was_up = self.up
            self._set_up(False)
            self._drop_queued()
            delay = self._backoff.next()
            self._link_down()
            log.warning(
                self.LOST if was_up else self.UNREACHABLE,
                extra={
                    "event": self.DOWN_EVENT,
                    "redis": self.where,
                    "error": reason,
                    "retry_in": round(delay, 3),
                },
            )
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        """One life of the two connections: runs until one of its tasks fails."""
        publisher = self._connection()
        subscriber = self._connection()
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

    # -- the subscriber connection -------------------------------------------------------------
    def _resubscribe(self) -> None:
        """Look at every channel again: subscribe what should be and is not."""
        self._changed_channels.update(self._rooms_by_channel)
        self._membership_changed.set()

    async def _control(self, connection: AbstractConnection) -> None:
        """(Un)subscribe as membership changes, and ping; the replies go to `_read`.

        Only the channels that changed are looked at (a room opened and closed in between
        costs nothing); a new connection starts from every channel.
        """
        loop = asyncio.get_running_loop()
        rooms = self._rooms_by_channel
        subscribed = self._subscribed = set()
        self._unsubscribing = Counter()
        self._changed_channels = set(rooms)
        self._last_pong = last_ping = loop.time()
        first = True
        changed = self._membership_changed
        while True:
            changed.clear()
            dirty, self._changed_channels = self._changed_channels, set()
            add = {name for name in dirty if name in rooms and name not in subscribed}
            remove = {name for name in dirty if name not in rooms and name in subscribed}
            await self._send_chunked(connection, self.SUBSCRIBE, add)
            await self._send_chunked(connection, self.UNSUBSCRIBE, remove)
            subscribed |= add
            subscribed -= remove
            self._unsubscribing.update(remove)
            now = loop.time()
            if now - self._last_pong > SILENCE_TIMEOUT:
                raise TimeoutError(f"no PONG from Redis for {SILENCE_TIMEOUT:g} s")
            if first or now - last_ping >= PING_INTERVAL:
                # The first PONG comes after every SUBSCRIBE above: `_read` then says we are up.
                await connection.send_command("PING", check_health=False)
                last_ping = now
                first = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), PING_INTERVAL)

    async def _send_chunked(
        self, connection: AbstractConnection, command: str, channels: set[bytes]
    ) -> None:
        names = sorted(channels)
        chunk = self.SUBSCRIBE_CHUNK
        for start in range(0, len(names), chunk):
            await connection.send_command(
                command, *names[start : start + chunk], check_health=False
            )

    async def _read(self, connection: AbstractConnection) -> None:
        """Deliver what other replicas published to this process's rooms."""
        loop = asyncio.get_running_loop()
        rooms = self._rooms_by_channel
        node = self.node
        header = envelope.HEADER_BYTES
        deliver = self._deliver
        kind = self.MESSAGE
        unsubscribe = self.UNSUBSCRIBE.lower().encode()
        while True:
            try:
                reply: Any = await connection.read_response(
                    timeout=math.inf, disconnect_on_error=False
                )
            except ResponseError as error:  # a (S)SUBSCRIBE refused (MOVED on a cluster)
                self._refused(error, None)
                continue
            if type(reply) is list and reply[0] == kind:
                room = rooms.get(reply[1])
                data = reply[2]
                if room is None or data[1:header] == node:
                    continue  # a room we just left, or our own message back from Redis
                message = envelope.decode(data)
                if message is None:
                    log.warning("not a wsrelay envelope", extra={"event": "backplane_bad_message"})
                    continue
                deliver(room, message.opcode, message.payload, None)
            elif reply == b"PONG" or (type(reply) is list and reply[0] == b"pong"):
                self._last_pong = loop.time()
                if not self.up:
                    self._backoff.reset()
                    self._set_up(True)
                    self._link_up()
            elif type(reply) is list and reply[0] == unsubscribe:
                channel = reply[1]
                asked = self._unsubscribing[channel]
                if asked > 1:
                    self._unsubscribing[channel] = asked - 1
                elif asked:
                    del self._unsubscribing[channel]
                else:  # not asked for
                    self._subscribed.discard(channel)
                    self._unsubscribed(channel)

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
            async with asyncio.timeout(REPLY_TIMEOUT):  # one timer for the batch's replies
                for room, _ in batch:
                    try:
                        await connection.read_response(timeout=math.inf)
                    except ResponseError as error:
                        self._refused(error, room)
            self._in_flight = []

    def _drop_queued(self) -> None:
        """Count what the lost connection did not confirm, and empty the queue."""
        for room, _ in (*self._in_flight, *self._pending):
            self._dropped(room)
        self._in_flight = []
        self._pending.clear()
        self._pending_bytes = 0
