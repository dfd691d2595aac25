"""Room membership and local fan-out: the whole backplane of one process (memory://).

A message is encoded into a frame once and that same buffer is written to every member's
transport; a member over its send-queue limit is dropped as a slow consumer instead of
slowing the room. Replicated backplanes subclass `Backplane` and carry messages between
processes through `_room_opened`, `_room_closed` and `_publish_remote`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import frames
from ..metrics import Metrics

if TYPE_CHECKING:
    from ..websocket import WebSocket


class Backplane:
    """Local rooms plus the hooks a replicated backplane fills in."""

    #: Whether messages reach the other replicas; /readyz and wsrelay_backplane_up follow it.
    up: bool = True

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._rooms: dict[str, set[WebSocket]] = {}

    async def start(self) -> None:
        """Connect to whatever carries messages between replicas (nothing for memory://)."""
        self.metrics.backplane_up.set(1 if self.up else 0)

    async def close(self) -> None:
        """Stop carrying messages; local rooms keep working until the process exits."""

    def join(self, room: str, ws: WebSocket) -> None:
        members = self._rooms.get(room)
        if members is None:
            members = self._rooms[room] = set()
            self._room_opened(room)
        members.add(ws)

    def leave(self, room: str, ws: WebSocket) -> None:
        members = self._rooms.get(room)
        if members is None:
            return
        members.discard(ws)
        if not members:
            del self._rooms[room]
            self._room_closed(room)

    def publish(self, room: str, opcode: int, payload: bytes, sender: WebSocket | None) -> int:
        """Deliver to the room's local members except `sender`, then to the other replicas."""
        delivered = self.deliver(room, opcode, payload, sender)
        self._publish_remote(room, opcode, payload)
        return delivered

    def deliver(self, room: str, opcode: int, payload: bytes, exclude: WebSocket | None) -> int:
        """Write one encoded frame to every local member of `room`; returns how many got it."""
        members = self._rooms.get(room)
        if not members:
            return 0
        frame = frames.encode(opcode, payload)
        size = len(payload)
        delivered = 0
        # A slow consumer is closed (and leaves the room) while we iterate: iterate a copy.
        for member in tuple(members):
            if member is not exclude and member.send_frame(frame, opcode, size):
                delivered += 1
        return delivered

    # -- hooks for replicated backplanes ---------------------------------------------------------
    def _room_opened(self, room: str) -> None:
        """The first local member joined `room`: subscribe to it elsewhere."""

    def _room_closed(self, room: str) -> None:
        """The last local member left `room`: unsubscribe."""

    def _publish_remote(self, room: str, opcode: int, payload: bytes) -> None:
        """Carry a message to the other replicas."""
