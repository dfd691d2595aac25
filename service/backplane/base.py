"""Room membership and local fan-out: the whole backplane of one process (memory://).

A message is encoded into a frame once and that same buffer is written to every member's
transport; a member over its send-queue limit is dropped as a slow consumer instead of
slowing the room. Frames for a room are written at the end of each pass of the event loop:
small messages that arrive in one pass (a burst read in one chunk, several senders at once)
reach each member in one write, not one system call per message.
Replicated backplanes subclass `Backplane` and carry messages between processes through
`_room_opened`, `_room_closed` and `_publish_remote`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple

from .. import frames
from ..metrics import Metrics

if TYPE_CHECKING:
    from ..websocket import WebSocket


#: Frames of one pass are joined into one write up to this size; a bigger burst is written
#: message by message, so no write takes a receiver's queue far past SEND_QUEUE_BYTES.
JOIN_LIMIT = 65536


class Outgoing(NamedTuple):
    """One encoded frame waiting for the end of the loop's pass."""

    frame: bytes
    text: bool
    size: int
    exclude: WebSocket | None


class Backplane:
    """Local rooms plus the hooks a replicated backplane fills in."""

    #: Whether messages reach the other replicas; /readyz and wsrelay_backplane_up follow it.
    up: bool = True

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._rooms: dict[str, set[WebSocket]] = {}
        #: Frames delivered during this pass of the event loop, by room (see `_flush`).
        self._batches: dict[str, list[Outgoing]] = {}

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

    def publish(self, room: str, opcode: int, payload: bytes, sender: WebSocket | None) -> None:
        """Deliver to the room's local members except `sender`, then to the other replicas."""
        self.deliver(room, opcode, payload, sender)
        self._publish_remote(room, opcode, payload)

    def deliver(self, room: str, opcode: int, payload: bytes, exclude: WebSocket | None) -> None:
        """Queue one frame for every local member of `room` but `exclude`, written at the end
        of this pass of the event loop."""
        if not self._rooms.get(room):
            return
        batch = self._batches.get(room)
        if batch is None:
            if not self._batches:
                asyncio.get_running_loop().call_soon(self._flush)
            batch = self._batches[room] = []
        batch.append(
            Outgoing(
                frames.encode(opcode, payload), opcode == frames.OP_TEXT, len(payload), exclude
            )
        )

    def _flush(self) -> None:
        """Write each room's frames of this pass: small ones joined, one buffer per member."""
        batches, self._batches = self._batches, {}
        for room, batch in batches.items():
            members = self._rooms.get(room)
            if not members:
                continue
            # A slow consumer is closed (and leaves the room) while we iterate: a copy.
            receivers = tuple(members)
            if len(batch) == 1 or sum(len(out.frame) for out in batch) > JOIN_LIMIT:
                # One by one: each write checks the receiver's send queue first.
                for out in batch:
                    counts = (int(out.text), int(not out.text), out.size)
                    for member in receivers:
                        if member is not out.exclude:
                            member.send_frames(out.frame, *counts)
                continue
            senders = {out.exclude for out in batch}
            if len(senders) == 1:  # one sender (or none, a feed): one buffer for the room
                (sender,) = senders
                joined = _joined(batch)
                for member in receivers:
                    if member is not sender:
                        member.send_frames(*joined)
            else:  # several senders: each member gets what the others sent
                for member in receivers:
                    mine = [out for out in batch if out.exclude is not member]
                    if mine:
                        member.send_frames(*_joined(mine))

    # -- hooks for replicated backplanes ---------------------------------------------------------
    def _room_opened(self, room: str) -> None:
        """The first local member joined `room`: subscribe to it elsewhere."""

    def _room_closed(self, room: str) -> None:
        """The last local member left `room`: unsubscribe."""

    def _publish_remote(self, room: str, opcode: int, payload: bytes) -> None:
        """Carry a message to the other replicas."""


def _joined(batch: list[Outgoing]) -> tuple[bytes, int, int, int]:
    """The frames in one buffer, with the message counts and payload bytes it holds."""
    texts = sum(out.text for out in batch)
    return (
        b"".join(out.frame for out in batch),
        texts,
        len(batch) - texts,
        sum(out.size for out in batch),
    )
