"""A faulted connection's outgoing frames on a real socket pair, with the loop's real timers."""

from __future__ import annotations

import asyncio
import functools
import random
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from service import frames
from service.faults import connection
from service.faults.connection import Close, ConnectionFaults
from service.faults.framing import FrameScanner
from service.faults.outgoing import Outgoing
from service.faults.params import Faults
from service.faults.shaping import Pace, Schedule
from service.faults.transport import FaultyTransport
from service.timers import Timers, loop_timers


class Peer:
    """The far end of a socket pair: what arrived, frame by frame, and when."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.scanner = FrameScanner()
        self.frames: list[tuple[int, bytes]] = []
        self.times: list[float] = []
        self.raw = 0
        self.eof = False

    async def read_for(self, seconds: float, until: int | None = None) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while loop.time() < deadline and not self.eof:
            if until is not None and len(self.frames) >= until:
                return
            try:
                data = await asyncio.wait_for(
                    loop.sock_recv(self.sock, 65536), deadline - loop.time()
                )
            except TimeoutError:
                return
            except ConnectionResetError:
                self.eof = True
                return
            if not data:
                self.eof = True
                return
            self.raw += len(data)
            for found in self.scanner.feed(data):
                self.frames.append(found)
                self.times.append(loop.time())


Pair = tuple[asyncio.Transport, Peer]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    ours, theirs = socket.socketpair()
    theirs.setblocking(False)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, sock=ours)
    yield transport, Peer(theirs)
    transport.abort()
    theirs.close()


def texts(peer: Peer) -> list[bytes]:
    return [payload for first, payload in peer.frames if first & 0x0F == frames.OP_TEXT]


def outgoing(transport: asyncio.Transport, counts: list[str], **kwargs: object) -> Outgoing:
    return Outgoing(transport, loop_timers(), counts.append, **kwargs)  # type: ignore[arg-type]


async def test_delayed_messages_arrive_after_the_delay_in_order(pair: Pair) -> None:
    transport, peer = pair
    counts: list[str] = []
    schedule = Schedule(random.Random(1), delay=0.2, jitter=0.1, drop=0.0)
    out = outgoing(transport, counts, schedule=schedule)
    sent_at = asyncio.get_running_loop().time()
    for index in range(200):
        out.frame(0x81, str(index).encode())
    assert out.queued > 0
    await peer.read_for(10, until=200)
    assert texts(peer) == [str(index).encode() for index in range(200)]
    assert min(peer.times) - sent_at >= 0.1 - 0.005  # delay - jitter, a lower bound only
    assert counts == ["delay"] * 200
    assert out.queued == 0


async def test_control_frames_wait_behind_delayed_messages(pair: Pair) -> None:
    transport, peer = pair
    out = outgoing(transport, [], schedule=Schedule(random.Random(1), 0.1, 0.0, 0.0))
    out.frame(0x81, b"first")
    out.frame(0x8A, b"pong")
    out.frame(0x88, struct.pack("!H", 1000))
    await peer.read_for(5, until=3)
    assert [first for first, _ in peer.frames] == [0x81, 0x8A, 0x88]


async def test_drops_follow_the_seed(pair: Pair) -> None:
    transport, peer = pair
    counts: list[str] = []
    out = outgoing(transport, counts, schedule=Schedule(random.Random(42), 0.0, 0.0, 0.25))
    for index in range(400):
        out.frame(0x81, str(index).encode())
    expected_schedule = Schedule(random.Random(42), 0.0, 0.0, 0.25)
    expected = [
        str(index).encode() for index in range(400) if expected_schedule.message(0.0) is not None
    ]
    await peer.read_for(5, until=len(expected))
    await peer.read_for(0.1)  # and nothing more
    assert texts(peer) == expected
    assert counts.count("drop") == 400 - len(expected)
    assert 50 < counts.count("drop") < 150


async def test_pre_encoded_frames_take_the_per_message_path(pair: Pair) -> None:
    transport, peer = pair
    counts: list[str] = []
    out = outgoing(transport, counts, fragment_size=4)
    joined = frames.encode(frames.OP_TEXT, b"abcdefghij") + frames.encode(frames.OP_BINARY, b"xy")
    out.write(joined[:3])  # cut inside the first frame
    out.write(joined[3:])
    await peer.read_for(5, until=4)
    assert peer.frames == [(0x01, b"abcd"), (0x00, b"efgh"), (0x80, b"ij"), (0x82, b"xy")]
    assert counts == ["fragment"]


async def test_throttle_paces_bytes_with_no_burst(pair: Pair) -> None:
    transport, peer = pair
    counts: list[str] = []
    out = outgoing(transport, counts, pace=Pace(20_000))
    payload = b"z" * 10_000
    started = asyncio.get_running_loop().time()
    out.frame(0x82, payload)
    assert out.queued > 0
    await peer.read_for(0.2)
    elapsed = asyncio.get_running_loop().time() - started
    # Never ahead of the pace: what arrived by now is at most elapsed x rate plus one slice.
    assert peer.raw <= elapsed * 20_000 + Pace(20_000).slice
    await peer.read_for(10, until=1)
    assert peer.frames == [(0x82, payload)]
    assert asyncio.get_running_loop().time() - started >= 0.45  # 10 kB at 20 kB/s
    assert counts == ["throttle"]


async def test_no_pong_drops_pongs_only(pair: Pair) -> None:
    transport, peer = pair
    counts: list[str] = []
    out = outgoing(transport, counts, no_pong=True)
    out.frame(0x8A, b"p1")
    out.frame(0x81, b"data")
    out.frame(0x89, b"server ping")
    await peer.read_for(5, until=2)
    assert peer.frames == [(0x81, b"data"), (0x89, b"server ping")]
    assert counts == ["no_pong"]


async def test_abort_after_queued_writes_the_queue_then_no_close_frame(pair: Pair) -> None:
    transport, peer = pair
    counts: list[str] = []
    out = outgoing(transport, counts, schedule=Schedule(random.Random(1), 0.05, 0.0, 0.0))
    out.frame(0x81, b"answer")
    out.abort_after_queued()
    out.frame(0x81, b"never")
    await peer.read_for(5)
    assert peer.eof
    assert peer.frames == [(0x81, b"answer")]
    assert counts == ["delay", "delay", "abort"]  # the second message was queued, never sent


async def test_hang_stops_writing_and_keeps_the_socket_open(pair: Pair) -> None:
    transport, peer = pair
    counts: list[str] = []
    out = outgoing(transport, counts, schedule=Schedule(random.Random(1), 0.05, 0.0, 0.0))
    out.frame(0x81, b"lost in the hang")
    out.hang()
    out.frame(0x81, b"also lost")
    assert out.queued == 0
    await peer.read_for(0.3)
    assert peer.frames == []
    assert not peer.eof
    assert not transport.is_closing()
    assert counts == ["delay", "hang"]


async def test_the_queue_counts_as_buffered_and_backpressure_waits_for_low(pair: Pair) -> None:
    transport, _ = pair
    out = outgoing(transport, [], schedule=Schedule(random.Random(1), 0.1, 0.0, 0.0))
    for _ in range(100):
        out.frame(0x82, b"q" * 1000)
    assert out.buffered >= 100 * 1000
    assert out.over_high
    await asyncio.wait_for(out.wait_low(), 5)
    assert out.queued <= out.low
    await asyncio.wait_for(out.flushed(), 5)
    assert out.queued == 0


async def test_connection_faults_close_after_the_nth_message(pair: Pair) -> None:
    transport, _ = pair
    closes: list[tuple[int, str]] = []
    counts: list[str] = []
    faults = Faults(close_after=3, close_code=4000, close_reason="bye")
    conn = ConnectionFaults(faults, transport, loop_timers(), counts.append, _record(closes))
    assert not conn.message_received()
    assert not conn.message_received()
    assert closes == []
    assert conn.message_received()  # the third: due once it has been handled
    assert closes == []
    conn.act()
    assert closes == [(4000, "bye")]
    assert not conn.message_received()
    assert counts == ["close"]


async def test_timed_faults_fire_on_the_shared_timers_and_stop_cancels_them(pair: Pair) -> None:
    transport, _ = pair
    closes: list[tuple[int, str]] = []
    counts: list[str] = []
    timers = loop_timers()
    conn = ConnectionFaults(
        Faults(close_in=0.05), transport, timers, counts.append, _record(closes)
    )
    stopped = ConnectionFaults(Faults(abort_in=0.05), transport, timers, counts.append, _record([]))
    stopped.stop()
    await asyncio.sleep(0.2)
    assert closes == [(1000, "")]
    assert counts == ["close"]
    assert not transport.is_closing()  # the stopped connection's abort_in never fired
    assert conn.seed is not None


async def test_one_timer_handle_serves_every_deadline() -> None:
    loop = asyncio.get_running_loop()
    timers = Timers(loop)
    fired: list[int] = []
    now = loop.time()
    entries = [
        timers.call_at(now + 0.01 * (index % 5), functools.partial(fired.append, index))
        for index in range(1000)
    ]
    Timers.cancel(entries[0])
    scheduled = len(loop._scheduled)  # type: ignore[attr-defined]
    assert scheduled <= 2  # ours, plus whatever the test runner holds
    await asyncio.sleep(0.15)
    assert sorted(fired) == list(range(1, 1000))
    assert [index % 5 for index in fired] == sorted(index % 5 for index in fired)


def _record(closes: list[tuple[int, str]]) -> Close:
    def close(code: int, reason: str) -> bool:
        closes.append((code, reason))
        return True

    return close


async def test_the_transport_closes_once_the_queue_is_written(pair: Pair) -> None:
    real, peer = pair
    out = outgoing(real, [], schedule=Schedule(random.Random(1), 0.2, 0.0, 0.0))
    transport = FaultyTransport(out)
    transport.write(frames.encode(frames.OP_TEXT, b"last words"))
    transport.write(frames.encode(frames.OP_CLOSE, struct.pack("!H", 1000)))
    assert transport.get_write_buffer_size() == out.queued > 0
    transport.close()
    assert transport.is_closing()
    assert not real.is_closing()  # not before the queue is out
    transport.write(frames.encode(frames.OP_TEXT, b"after the close: ignored"))
    await peer.read_for(5)
    assert peer.frames == [(0x81, b"last words"), (0x88, struct.pack("!H", 1000))]
    assert peer.eof


async def test_a_hung_transport_ignores_close_and_abort(pair: Pair) -> None:
    real, peer = pair
    counts: list[str] = []
    out = outgoing(real, counts)
    transport = FaultyTransport(out)
    out.hang()
    transport.write(frames.encode(frames.OP_TEXT, b"unheard"))
    transport.close()
    transport.write_eof()
    transport.abort()
    await peer.read_for(0.3)
    assert (peer.frames, peer.eof) == ([], False)
    assert not real.is_closing()
    assert counts == ["hang"]
    real.abort()  # what the hang's limit does
    await peer.read_for(5)
    assert peer.eof


async def test_a_delay_alone_draws_nothing_and_shares_one_generator(pair: Pair) -> None:
    transport, peer = pair
    before = connection._NO_DRAWS.getstate()
    timers = loop_timers()
    counts: list[str] = []
    delayed = ConnectionFaults(Faults(delay=0.01), transport, timers, counts.append, _record([]))
    for index in range(20):
        delayed.output.frame(0x81, str(index).encode())
    await peer.read_for(5, until=20)
    assert len(peer.frames) == 20
    assert connection._NO_DRAWS.getstate() == before
    drawing = ConnectionFaults(Faults(jitter=0.01), transport, timers, counts.append, _record([]))
    assert drawing.output._schedule is not None
    assert drawing.output._schedule.rng is not connection._NO_DRAWS
