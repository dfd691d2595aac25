"""The Redis Cluster backplane (redis-cluster://, rediss-cluster://): rooms over sharded pub/sub.

Each room is a sharded channel, `wsrelay:{<room key>}`, braces in the room key escaped: the
whole room key is the channel's hash tag, so the rooms of one route spread over the slots, and
so over the masters (the route template's own `{room}` would otherwise be the hash tag and put
every room of the route on one slot). A sharded channel lives on its slot's master only: a
message is SPUBLISHed there and delivered by that master alone, so the cluster's pub/sub work
grows with its masters (a classic PUBLISH on a cluster is broadcast to every node).

What redis-py does here: the slot map (its `RedisCluster` nodes manager reads CLUSTER SLOTS
from any startup node that answers) and the slot of a channel. What its cluster pub/sub did
not do, tried with redis-py 8.1 on a local cluster (2026-12-01, a process that only
subscribes 24 rooms, one master killed): it reads the nodes' connections in turn, so the dead
master's connection error ended the reading of every room, and no room was heard in the 15 s
after the replica took over (it moves subscriptions only when the same client refreshes its
slot map); `get_sharded_message` with no subscription returns at once (a read loop spins:
660,000 calls in 0.2 s). So each master gets a `ShardLink` of its own (subscriber and
pipelined publisher, as the single-Redis backplane has; one dead master delays no other), and
this class keeps the slot map and moves rooms between links when the map changes. It reads
the map again after a link fails (a failover may follow), every second while a link is down,
after Redis pushes SUNSUBSCRIBE (a slot migrated away) and after a MOVED reply.

`up` (/readyz, wsrelay_backplane_up) holds while the slot map is known and every master's
link is up with its rooms subscribed. Semantics otherwise as the single-Redis backplane:
local delivery first, at most once, order per publisher and room, messages that cannot go
out dropped and counted; start, close, `up` and the drop counter are `ReplicatedBackplane`'s
(`.replicated`), the task it runs here the one that follows the slot map.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisClusterException, RedisError

from ..backoff import Backoff
from ..metrics import Metrics
from . import cluster_url, envelope
from .pubsub_link import BACKOFF_INITIAL, BACKOFF_MAX, CONNECT_TIMEOUT
from .replicated import ReplicatedBackplane
from .shard import ShardLink

log = logging.getLogger("wsrelay.backplane")

#: After a refresh of the slot map, the next one waits at least this long (a burst of
#: SUNSUBSCRIBE pushes or MOVED replies costs one CLUSTER SLOTS).
REFRESH_INTERVAL: Final = 0.1
#: How often the slot map is read while some master's link is down.
DOWN_REFRESH_INTERVAL: Final = 1.0
SPUBLISH: Final = b"SPUBLISH"


def channel_name(room: str) -> bytes:
    """The sharded channel of a room: the escaped room key is the hash tag."""
    key = room.replace("%", "%25").replace("{", "%7B").replace("}", "%7D")
    return f"wsrelay:{{{key}}}".encode()


class RedisClusterBackplane(ReplicatedBackplane):
    """Local rooms and the lifecycle (the base class) plus sharded pub/sub on a Redis Cluster."""

    def __init__(self, url: str, metrics: Metrics) -> None:
        config = cluster_url.parse(url)
        super().__init__(metrics, ",".join(f"{host}:{port}" for host, port in config.startup))
        self._connection_class = config.connection_class
        self._options = {
            **config.options,
            "protocol": 2,
            "client_name": "wsrelay",
            "socket_connect_timeout": CONNECT_TIMEOUT,
            "socket_keepalive": True,
            # Reconnecting is ours (backoff, resubscribe, readiness): no retries inside redis-py.
            "retry": Retry(NoBackoff(), 0),
        }
        # The topology only: CLUSTER SLOTS from whichever startup node answers.
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in config.startup],
            **_cluster_options(config),
        )
        self._known = False  # the slot map has been read at least once
        self._links: dict[str, ShardLink] = {}
        self._channels: dict[str, bytes] = {}  # local room -> its channel
        self._slots: dict[str, int] = {}  # local room -> its channel's slot
        self._heads: dict[str, bytes] = {}  # local room -> the start of its SPUBLISH
        self._room_links: dict[str, ShardLink] = {}
        self._refresh = asyncio.Event()
        self._backoff = Backoff(BACKOFF_INITIAL, BACKOFF_MAX)

    # -- the lifecycle's hooks (the base class starts and closes) ------------------------------
    async def flush(self, timeout: float) -> bool:
        """Wait until every master confirmed its queued messages; False if not within `timeout`."""
        links = list(self._links.values())
        return all(await asyncio.gather(*(link.flush(timeout) for link in links)))

    async def _disconnect(self) -> None:
        """Close every master's link (the links have tasks of their own) and the slot map's
        client."""
        await asyncio.gather(*(link.close() for link in self._links.values()))
        self._links.clear()
        with contextlib.suppress(RedisError, OSError):
            await self._cluster.aclose()

    # -- the hooks of the base class -----------------------------------------------------------
    def _room_opened(self, room: str) -> None:
        if "#" not in room:
            return  # not a broadcast room ("<template>#<room>"): a feed route, local by design
        channel = channel_name(room)
        self._channels[room] = channel
        self._slots[room] = self._cluster.keyslot(channel)
        self._heads[room] = envelope.publish_head(channel, SPUBLISH)
        if self._known:
            self._place(room)

    def _room_closed(self, room: str) -> None:
        channel = self._channels.pop(room, None)
        if channel is None:
            return
        del self._slots[room], self._heads[room]
        link = self._room_links.pop(room, None)
        if link is not None:
            link.unassign(channel)

    def _publish_remote(self, room: str, opcode: int, payload: bytes) -> None:
        """Queue one SPUBLISH on the link of the room's master, or drop and count it."""
        link = self._room_links.get(room)
        head = self._heads.get(room)
        if link is None or head is None:
            self.dropped(room)
            return
        if not link.enqueue(room, envelope.publish_command(head, self._headers[opcode], payload)):
            self.dropped(room)

    # -- what the links call (ShardOwner) --------------------------------------------------------
    def topology_changed(self) -> None:
        self._refresh.set()

    def link_state_changed(self) -> None:
        self._update_up()

    # -- the slot map ----------------------------------------------------------------------------
    async def _supervise(self) -> None:
        """Read the slot map now and whenever a link says it may have changed."""
        while True:
            self._refresh.clear()
            try:
                await self._cluster.nodes_manager.initialize()
            except (RedisError, RedisClusterException, OSError) as error:
                reason = str(error) or type(error).__name__
            except Exception as error:  # a bug must not end the following for good
                log.exception("backplane slot map failed", extra={"event": "backplane_error"})
                reason = repr(error)
            else:
                self._backoff.reset()
                await self._apply()
                # While a master's link is down, a replica may be promoted any moment: look
                # again every second, not only when the dead link's next attempt fails.
                timeout = None if self.up else DOWN_REFRESH_INTERVAL
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._refresh.wait(), timeout)
                await asyncio.sleep(REFRESH_INTERVAL)
                continue
            delay = self._backoff.next()
            log.warning(
                "backplane cluster unreachable",
                extra={
                    "event": "backplane_down",
                    "redis": self.where,
                    "error": reason,
                    "retry_in": round(delay, 3),
                },
            )
            self._set_up(False)
            await asyncio.sleep(delay)

    async def _apply(self) -> None:
        """Links for the masters of the new map; every local room on its slot's master."""
        manager = self._cluster.nodes_manager
        masters = {node.name: node for node in {nodes[0] for nodes in manager.slots_cache.values()}}
        for name in [name for name in self._links if name not in masters]:
            await self._links.pop(name).close()  # no longer a master: its rooms move below
        for name, node in masters.items():
            if name not in self._links:
                link = self._links[name] = ShardLink(self, name, self._connector(node))
                link.start()
        self._known = True
        for room in self._channels:
            self._place(room)
        for link in self._links.values():
            link.resync()
        self._update_up()

    def _place(self, room: str) -> None:
        """Assign `room` to the link of its slot's master (moving it if that changed)."""
        slot = self._slots[room]
        nodes = self._cluster.nodes_manager.slots_cache.get(slot)
        link = self._links.get(nodes[0].name) if nodes else None
        old = self._room_links.get(room)
        if link is old:
            return
        channel = self._channels[room]
        if old is not None:
            old.unassign(channel)
            del self._room_links[room]
        if link is not None:
            link.assign(channel, room, slot)
            self._room_links[room] = link

    def _connector(self, node: ClusterNode) -> Any:
        def connect() -> AbstractConnection:
            connection: AbstractConnection = self._connection_class(
                host=node.host, port=node.port, **self._options
            )
            return connection

        return connect

    def _update_up(self) -> None:
        up = self._known and bool(self._links) and all(link.up for link in self._links.values())
        if up == self.up:
            return
        self._set_up(up)
        if up:
            log.info(
                "backplane connected",
                extra={
                    "event": "backplane_up",
                    "redis": self.where,
                    "masters": len(self._links),
                    "rooms": len(self._channels),
                },
            )
        else:
            log.warning("backplane down", extra={"event": "backplane_down", "redis": self.where})


def _cluster_options(config: cluster_url.ClusterURL) -> dict[str, Any]:
    """RedisCluster's arguments for the URL's options (TLS is its `ssl` flag)."""
    options = dict(config.given)
    if config.connection_class.__name__ == "SSLConnection":
        options["ssl"] = True
    options.setdefault("socket_connect_timeout", CONNECT_TIMEOUT)
    options.setdefault("socket_timeout", CONNECT_TIMEOUT)
    return options
