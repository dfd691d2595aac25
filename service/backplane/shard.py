"""One master of a Redis Cluster, as the cluster backplane sees it: a `PubSubLink` in SSUBSCRIBE.

The link subscribes the rooms the backplane assigns to it (one channel per SSUBSCRIBE: a
command's channels must share a slot), reads what the other replicas publish there, and sends
this process's messages as pipelined SPUBLISH batches. Each link connects, fails and
reconnects on its own, with its own backoff, so one dead master delays no other. It tells its
owner (`ShardOwner`) whenever the cluster may have moved something: its connections failed (a
failover may follow), Redis ended a subscription by itself (the SUNSUBSCRIBE push of a slot
migration) or refused a command (MOVED); the owner then reads the slot map again and moves
rooms between links.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError

from .pubsub_link import PubSubLink


class ShardOwner(Protocol):
    """What a link needs from the backplane that owns it."""

    node: bytes

    def deliver(self, room: str, opcode: int, payload: bytes, exclude: Any) -> None: ...

    def topology_changed(self) -> None: ...

    def link_state_changed(self) -> None: ...

    def dropped(self, room: str) -> None: ...


class ShardLink(PubSubLink):
    """The connections to one master, and the rooms whose slots it serves."""

    SUBSCRIBE = "SSUBSCRIBE"
    UNSUBSCRIBE = "SUNSUBSCRIBE"
    MESSAGE = b"smessage"
    SUBSCRIBE_CHUNK = 1
    LOST = "backplane shard lost"
    UNREACHABLE = "backplane shard unreachable"
    DOWN_EVENT = "backplane_shard_down"

    def __init__(
        self, owner: ShardOwner, name: str, connect: Callable[[], AbstractConnection]
    ) -> None:
        self._init_link(owner.deliver)
        self.owner = owner
        self.node = owner.node
        self.name = self.where = name  # "host:port"
        self._connect = connect
        self._slots: dict[bytes, int] = {}  # assigned channel -> its slot (to match a MOVED)
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
        self._slots[channel] = slot
        self._subscribe(channel, room)

    def unassign(self, channel: bytes) -> None:
        self._slots.pop(channel, None)
        self._unsubscribe(channel)

    def enqueue(self, room: str, command: bytes) -> bool:
        """Queue one SPUBLISH for the writer; False if the link cannot take it now."""
        return self._enqueue(room, command)

    def resync(self) -> None:
        """Subscribe again whatever is assigned and not subscribed (a channel refused or moved
        away whose slot the new map still gives this master)."""
        self._resubscribe()

    # -- the hooks of the link -----------------------------------------------------------------
    def _connection(self) -> AbstractConnection:
        return self._connect()

    def _set_up(self, up: bool) -> None:
        if up != self.up:
            self.up = up
            self.owner.link_state_changed()

    def _link_down(self) -> None:
        self.owner.topology_changed()  # a failover may be under way: read the slot map

    def _dropped(self, room: str) -> None:
        self.owner.dropped(room)

    def _unsubscribed(self, channel: bytes) -> None:
        self.owner.topology_changed()  # its slot moved to another master

    def _refused(self, error: ResponseError, room: str | None) -> None:
        slot = getattr(error, "slot_id", None)  # redis-py's MovedError (and AskError)
        if slot is None:
            raise error
        if room is not None:  # an SPUBLISH: this message is lost, counted
            self._dropped(room)
        else:  # an SSUBSCRIBE: not subscribed after all
            self._subscribed.difference_update(
                channel for channel, channel_slot in self._slots.items() if channel_slot == slot
            )
        self.owner.topology_changed()
