"""The load client: picows members in rooms, open-loop publishers, latency from intended send.

Member j of room r connects to replica j % replicas, so every room spans every replica. The
first `publishers` members of each room publish; together they offer `rate` messages/s on a
fixed schedule that never waits for deliveries (open loop). Each message is stamped with the
moment it is written and the publisher's replica, so a receiver tells local from
cross-replica deliveries; how far the writes fell behind the schedule is reported too.
"""

from __future__ import annotations

import asyncio
import struct
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from picows import WSFrame, WSListener, WSMsgType, WSTransport, ws_connect

#: send time (perf_counter_ns), publisher's replica
HEADER = struct.Struct("!qB")
ROOM_PATH = "/rooms/bench-{}"
TICK = 0.002


@dataclass
class Tally:
    """What the receivers saw during one step."""

    active: bool = False
    local_ns: array[int] = field(default_factory=lambda: array("q"))
    cross_ns: array[int] = field(default_factory=lambda: array("q"))
    disconnects: int = 0

    def reset(self) -> None:
        self.local_ns = array("q")
        self.cross_ns = array("q")


class Member(WSListener):
    def __init__(self, tally: Tally, replica: int) -> None:
        self.tally = tally
        self.replica = replica
        self.transport: WSTransport | None = None

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is not WSMsgType.BINARY or not self.tally.active:
            return
        sent, origin = HEADER.unpack_from(frame.get_payload_as_memoryview())
        latency = time.perf_counter_ns() - sent
        if origin == self.replica:
            self.tally.local_ns.append(latency)
        else:
            self.tally.cross_ns.append(latency)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self.tally.disconnects += 1


@dataclass
class Room:
    members: list[Member]
    publishers: list[Member]


async def open_rooms(
    ports: Sequence[int], clients: int, rooms: int, publishers: int, tally: Tally
) -> list[Room]:
    """`clients` connections, `clients // rooms` per room, spread over the replicas."""
    per_room = clients // rooms
    result = []
    for r in range(rooms):
        members: list[Member] = []
        for j in range(per_room):
            replica = j % len(ports)
            url = f"ws://127.0.0.1:{ports[replica]}{ROOM_PATH.format(r)}"
            _, member = await ws_connect(
                lambda replica=replica: Member(tally, replica),
                url,
                websocket_handshake_timeout=10,
            )
            members.append(cast(Member, member))  # ws_connect returns what the factory made
        result.append(Room(members, members[:publishers]))
    return result


def close_rooms(rooms: Sequence[Room]) -> None:
    for room in rooms:
        for member in room.members:
            if member.transport is not None:
                member.transport.send_close()
                member.transport.disconnect()


async def drive(rooms: Sequence[Room], rate: float, seconds: float, size: int) -> tuple[int, float]:
    """Publish `rate` messages/s round-robin over every publisher for `seconds`.

    Returns how many were sent and the worst lag behind the schedule, in milliseconds.
    """
    publishers = [(p, room) for room in rooms for p in room.publishers]
    padding = b"\x00" * max(0, size - HEADER.size)
    start = time.perf_counter_ns()
    period_ns = 1e9 / rate
    end = start + int(seconds * 1e9)
    sent = 0
    lag = 0
    while True:
        now = time.perf_counter_ns()
        if now >= end:
            return sent, lag / 1e6
        due = int((now - start) / period_ns) + 1
        if sent < due:
            lag = max(lag, now - (start + int(sent * period_ns)))
        while sent < due:
            publisher, _ = publishers[sent % len(publishers)]
            assert publisher.transport is not None
            publisher.transport.send(
                WSMsgType.BINARY, HEADER.pack(time.perf_counter_ns(), publisher.replica) + padding
            )
            sent += 1
        await asyncio.sleep(TICK)


def percentile(samples: array[int], q: float) -> float | None:
    """The q-quantile in milliseconds (nearest rank), None without samples."""
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1e6


def summary(samples: array[int]) -> dict[str, Any]:
    return {q: percentile(samples, v) for q, v in (("p50", 0.5), ("p99", 0.99), ("p999", 0.999))}
