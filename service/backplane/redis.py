"""The Redis backplane (redis://, rediss://): rooms shared by every replica on one Redis.

Classic pub/sub (PUBLISH/SUBSCRIBE), one channel per room: `wsrelay:<db>:<room key>`, the
room key being the route template, '#', and the room. Redis pub/sub ignores the database
number, so it is part of the channel: deployments on different databases stay apart.

Per process: one subscriber connection whose subscriptions follow local membership (a room
is subscribed while it has a local member) and one publisher connection. A message is
delivered to the local members at once (the base class), then queued for the publisher; a
single writer task sends the queue in pipelined batches of PUBLISH (packed by hand once per
message, see `envelope.publish_command` and below), so the hot path adds no task and no await
per message (measured against a task per `redis.publish`: bench/backplane/RESULTS.md). The
queue is bounded; while Redis is down or too slow the message is dropped and counted
(wsrelay_dropped_messages_total{reason="backplane"}): the delivery is at most once, never
buffered without bound. Each envelope carries this process's node id, so the copy Redis
hands back is skipped.

One supervisor task (re)connects with exponential backoff and jitter, resubscribes every
room that has local members, and keeps `up` (/readyz, wsrelay_backplane_up) true only while
both connections work: after a reconnect, from the first PONG that follows the SUBSCRIBE of
every local room, so a ready replica is subscribed.

Why PUBLISH is packed by hand rather than by redis-py's `pack_commands` / `pack_command`
(which the writer could call per batch): measured side by side on 2026-11-26
(`python -m bench.backplane.packing`, figures in bench/backplane/RESULTS.md), redis-py's packer
costs 1.5-1.8 us more per message (packing alone, 64 B: 0.22 us by hand, 1.77 us
`pack_command`, 2.04 us `pack_commands`), which end to end is +16 to +39 % of this process's
CPU per published 64-byte message (by hand 4.6-6.4 us, medians of three runs on a shared
2-core machine). At 16 KiB copying the payload dominates and the difference (-0.5 to +4.8
us on 27-31 us by hand) is within the run-to-run spread. The hand packing is two short
functions in `envelope`, checked byte for byte against redis-py's `pack_command` by
tests/backplane/test_envelope.py.

Why classic pub/sub here: one Redis primary relays far more messages per second than a few
Python replicas can publish (bench/backplane/), and it works with any Redis version. Sharded
pub/sub (SSUBSCRIBE/SPUBLISH) pays off on a Redis Cluster, where a classic PUBLISH is broadcast
to every node: that is `.redis_cluster` (redis-cluster://), with a link per master.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from typing import Any, Final

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from ..backoff import Backoff
from ..frames import OP_BINARY, OP_TEXT
from ..metrics import Metrics
from . import envelope
from .base import Backplane
from .redis_url import connection_pool

log = logging.getLogger("wsrelay.backplane")

#: Messages waiting for the publisher (count and bytes); past either, new ones are dropped.
MAX_PENDING: Final = 10_000
MAX_PENDING_BYTES: Final = 16 << 20
#: PUBLISH commands written to Redis in one go, their replies read after.
BATCH: Final = 256
#: Channels named in one SUBSCRIBE or UNSUBSCRIBE.
SUBSCRIBE_CHUNK: Final = 500
BACKOFF_INITIAL: Final = 0.1
BACKOFF_MAX: Final = 5.0
#: The subscriber pings this often; no PONG for SILENCE_TIMEOUT means the link is dead.
PING_INTERVAL: Final = 5.0
SILENCE_TIMEOUT: Final = 15.0
#: How long `close` waits for queued messages to reach Redis.
FLUSH_TIMEOUT: Final = 1.0
CONNECT_TIMEOUT: Final = 5.0
#: A batch of PUBLISH not confirmed within this is a dead link.
REPLY_TIMEOUT: Final = 5.0

_Pending = tuple[str, bytes]  # room, RESP PUBLISH command


class RedisBackplane(Backplane):
    """Local rooms (the base class) plus Redis pub/sub between the replicas."""

    def __init__(self, url: str, metrics: Metrics) -> None:
        super().__init__(metrics)
        self.up = False
        self.node = envelope.new_node_id()
        self._pool: ConnectionPool = connection_pool(
            url,
            protocol=2,
            client_name="wsrelay",
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_keepalive=True,
            # Reconnecting is ours (backoff, resubscribe, readiness): no retries inside redis-py.
            retry=Retry(NoBackoff(), 0),
        )
        options = self._pool.connection_kwargs
        db = options.get("db", 0)
        self._prefix = f"wsrelay:{db}:"
        #: Where Redis is, for logs: never the URL, which may hold a password.
        self.where = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}/{db}"
        self._channels: dict[str, bytes] = {}  # local room -> its channel
        self._heads: dict[str, bytes] = {}  # local room -> the start of its PUBLISH command
        self._headers = {op: envelope.header(self.node, op) for op in (OP_TEXT, OP_BINARY)}
        self._rooms_by_channel: dict[bytes, str] = {}
        self._pending: deque[_Pending] = deque()
        self._pending_bytes = 0
        self._in_flight: list[_Pending] = []
        self._writer_wakeup = asyncio.Event()
        self._writer_idle = asyncio.Event()
        self._membership_changed = asyncio.Event()
        self._changed_channels: set[bytes] = set()  # joined or left since the last (UN)SUBSCRIBE
        self._last_pong = 0.0
        self._backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)
        self._supervisor: asyncio.Task[None] | None = None

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
        self._set_up(False)

    async def flush(self, timeout: float) -> bool:
        """Wait until Redis has confirmed every queued message; False if not within `timeout`."""
        if self.up and (self._pending or self._in_flight):
            self._writer_idle.clear()  # the writer sets it again once the queue is empty
            try:
                await asyncio.wait_for(self._writer_idle.wait(), timeout)
            except TimeoutError:
                return False
        return not (self._pending or self._in_flight)

    # -- the hooks of the base class -----------------------------------------------------------
    def _room_opened(self, room: str) -> None:
        if "#" not in room:
            return  # not a broadcast room ("<template>#<room>"): a feed route, local by design
        channel = (self._prefix + room).encode()
        self._channels[room] = channel
        self._heads[room] = envelope.publish_head(channel)
        self._rooms_by_channel[channel] = room
        self._changed_channels.add(channel)
        self._membership_changed.set()

    def _room_closed(self, room: str) -> None:
        if "#" not in room:
            return
        self._heads.pop(room, None)
        channel = self._channels.pop(room, None)
        if channel is not None:
            del self._rooms_by_channel[channel]
            self._changed_channels.add(channel)
            self._membership_changed.set()

    def _publish_remote(self, room: str, opcode: int, payload: bytes) -> None:
        """Queue one PUBLISH for the writer task, or drop and count it if Redis cannot take it."""
        if (
            not self.up
            or len(self._pending) >= MAX_PENDING
            or self._pending_bytes + len(payload) > MAX_PENDING_BYTES
        ):
            self._dropped(room)
            return
        head = self._heads.get(room) or envelope.publish_head((self._prefix + room).encode())
        command = envelope.publish_command(head, self._headers[opcode], payload)
        self._pending.append((room, command))
        self._pending_bytes += len(command)
        self._writer_wakeup.set()

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
            log.warning(
                "backplane connection lost" if was_up else "backplane unreachable",
                extra={
                    "event": "backplane_down",
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

    def _connection(self) -> AbstractConnection:
        connection: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        return connection

    def _set_up(self, up: bool) -> None:
        self.up = up
        self.metrics.backplane_up.set(1 if up else 0)

    # -- the subscriber connection -------------------------------------------------------------
    async def _control(self, connection: AbstractConnection) -> None:
        """(Un)subscribe as local membership changes, and ping; the replies go to `_read`.

        Only the rooms that changed are looked at (a room opened and closed in between costs
        nothing); a new connection starts from every local room.
        """
        loop = asyncio.get_running_loop()
        rooms = self._rooms_by_channel
        subscribed: set[bytes] = set()
        self._changed_channels = set(rooms)
        self._last_pong = last_ping = loop.time()
        first = True
        changed = self._membership_changed
        while True:
            changed.clear()
            dirty, self._changed_channels = self._changed_channels, set()
            add = {name for name in dirty if name in rooms and name not in subscribed}
            remove = {name for name in dirty if name not in rooms and name in subscribed}
            await self._send_chunked(connection, "SUBSCRIBE", add)
            await self._send_chunked(connection, "UNSUBSCRIBE", remove)
            subscribed |= add
            subscribed -= remove
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

    @staticmethod
    async def _send_chunked(
        connection: AbstractConnection, command: str, channels: set[bytes]
    ) -> None:
        names = sorted(channels)
        for start in range(0, len(names), SUBSCRIBE_CHUNK):
            await connection.send_command(
                command, *names[start : start + SUBSCRIBE_CHUNK], check_health=False
            )

    async def _read(self, connection: AbstractConnection) -> None:
        """Deliver what other replicas published to this process's rooms."""
        loop = asyncio.get_running_loop()
        rooms = self._rooms_by_channel
        node = self.node
        header = envelope.HEADER_BYTES
        deliver = self.deliver
        while True:
            reply: Any = await connection.read_response(timeout=math.inf, disconnect_on_error=False)
            if type(reply) is list and reply[0] == b"message":
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
                    self._connected()

    def _connected(self) -> None:
        self._backoff.reset()
        self._set_up(True)
        log.info(
            "backplane connected",
            extra={"event": "backplane_up", "redis": self.where, "rooms": len(self._channels)},
        )

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
                for _ in batch:
                    await connection.read_response(timeout=math.inf)
            self._in_flight = []

    def _drop_queued(self) -> None:
        """Count what the lost connection did not confirm, and empty the queue."""
        for room, _ in (*self._in_flight, *self._pending):
            self._dropped(room)
        self._in_flight = []
        self._pending.clear()
        self._pending_bytes = 0

    def _dropped(self, room: str) -> None:
        # The room key is "<route template>#<room>": the metric is labelled by template.
        self.metrics.route(room.partition("#")[0]).dropped("backplane")
