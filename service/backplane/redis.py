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

Start and close (in the background, flushing on the way out), `up` and the drop counter are
`ReplicatedBackplane`'s (`.replicated`), shared with the cluster backplane. The two
connections, their supervision and the pipelined writer are `PubSubLink`'s (`.pubsub_link`):
it (re)connects with exponential backoff and jitter, resubscribes every room that has local
members, and keeps `up` (/readyz, wsrelay_backplane_up) true only while both connections
work: after a reconnect, from the first PONG that follows the SUBSCRIBE of every local room,
so a ready replica is subscribed.

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

import logging

from redis.asyncio.connection import AbstractConnection, ConnectionPool
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ..metrics import Metrics
from . import envelope
from .pubsub_link import (
    BACKOFF_INITIAL,
    BACKOFF_MAX,
    BATCH,
    CONNECT_TIMEOUT,
    MAX_PENDING,
    MAX_PENDING_BYTES,
    PING_INTERVAL,
    REPLY_TIMEOUT,
    SILENCE_TIMEOUT,
    PubSubLink,
)
from .redis_url import connection_pool
from .replicated import FLUSH_TIMEOUT, ReplicatedBackplane

log = logging.getLogger("wsrelay.backplane")

__all__ = [
    "BACKOFF_INITIAL",
    "BACKOFF_MAX",
    "BATCH",
    "CONNECT_TIMEOUT",
    "FLUSH_TIMEOUT",
    "MAX_PENDING",
    "MAX_PENDING_BYTES",
    "PING_INTERVAL",
    "REPLY_TIMEOUT",
    "SILENCE_TIMEOUT",
    "RedisBackplane",
]


class RedisBackplane(ReplicatedBackplane, PubSubLink):
    """Local rooms and the lifecycle (`ReplicatedBackplane`) plus one link to Redis: this
    process's subscriber and publisher are the backplane's own (`PubSubLink`)."""

    def __init__(self, url: str, metrics: Metrics) -> None:
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
        where = f"{options.get('host', 'localhost')}:{options.get('port', 6379)}/{db}"
        ReplicatedBackplane.__init__(self, metrics, where)
        self._init_link(self.deliver)
        self._channels: dict[str, bytes] = {}  # local room -> its channel
        self._heads: dict[str, bytes] = {}  # local room -> the start of its PUBLISH command

    #: What the lifecycle asks for is the link's (the base classes come before the link's).
    _supervise = PubSubLink._supervise
    flush = PubSubLink.flush
    _dropped = ReplicatedBackplane.dropped

    # -- the hooks of the base class -----------------------------------------------------------
    def _room_opened(self, room: str) -> None:
        if "#" not in room:
            return  # not a broadcast room ("<template>#<room>"): a feed route, local by design
        channel = (self._prefix + room).encode()
        self._channels[room] = channel
        self._heads[room] = envelope.publish_head(channel)
        self._subscribe(channel, room)

    def _room_closed(self, room: str) -> None:
        if "#" not in room:
            return
        self._heads.pop(room, None)
        channel = self._channels.pop(room, None)
        if channel is not None:
            self._unsubscribe(channel)

    def _publish_remote(self, room: str, opcode: int, payload: bytes) -> None:
        """Queue one PUBLISH for the writer task, or drop and count it if Redis cannot take it."""
        head = self._heads.get(room) or envelope.publish_head((self._prefix + room).encode())
        if not self._enqueue(room, envelope.publish_command(head, self._headers[opcode], payload)):
            self._dropped(room)

    # -- the hooks of the link -----------------------------------------------------------------
    def _connection(self) -> AbstractConnection:
        connection: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        return connection

    def _link_up(self) -> None:
        log.info(
            "backplane connected",
            extra={"event": "backplane_up", "redis": self.where, "rooms": len(self._channels)},
        )
