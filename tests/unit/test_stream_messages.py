"""Stream messages and their pace, socket-free: seq and ts, the size, the schedule, the end."""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, cast

import pytest

from service.faults.params import Stream
from service.modes.stream import Push, Wheel, binary_message, text_message
from service.timers import loop_timers
from service.websocket import WebSocket


@pytest.mark.parametrize("size", [0, 10, 34, 35, 36, 100, 4096])
def test_a_text_message_is_json_with_seq_and_ts_padded_to_size(size: int) -> None:
    text = text_message(7, 1_700_000_000_123_456_789, size)
    assert json.loads(text) == {"seq": 7, "ts": 1_700_000_000_123_456_789}
    assert len(text.encode()) == max(size, len('{"seq":7,"ts":1700000000123456789}'))


def test_a_binary_message_is_seq_and_ts_big_endian_then_zeros() -> None:
    data = binary_message(3, 99, 24)
    assert struct.unpack("!QQ", data[:16]) == (3, 99)
    assert data[16:] == bytes(8)
    assert len(binary_message(3, 99, 0)) == 16


class Sink:
    """Stands in for the connection: what was sent, and the close."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.closed = False
        self.close_code: int | None = None

    def send(self, data: Any) -> asyncio.Future[None] | None:
        self.sent.append(data)
        return None

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = True
        self.close_code = code


def push(settings: Stream) -> tuple[Push, Sink]:
    sink = Sink()
    return Push(cast(WebSocket, sink), settings, now=100.0), sink


def seqs(sink: Sink) -> list[int]:
    return [json.loads(message)["seq"] for message in sink.sent]


def test_the_first_message_goes_at_once_then_one_per_interval() -> None:
    stream, sink = push(Stream(rate=4.0))
    assert stream.due(100.0) == pytest.approx(100.25)
    assert stream.due(100.25) == pytest.approx(100.5)
    assert stream.due(100.6) == pytest.approx(100.75)  # a late tick sends what is due
    assert seqs(sink) == [0, 1, 2]


def test_a_tick_a_little_late_catches_up_without_a_gap() -> None:
    stream, sink = push(Stream(rate=10.0))
    stream.due(100.0)
    stream.due(100.35)
    assert seqs(sink) == [0, 1, 2, 3]


def test_a_stream_far_behind_starts_its_schedule_again_instead_of_bursting() -> None:
    stream, sink = push(Stream(rate=10.0))
    stream.due(100.0)
    deadline = stream.due(105.0)  # 5 s of a blocked loop: 50 messages late
    assert seqs(sink) == [0, 1]
    assert deadline == pytest.approx(105.1)


def test_after_count_messages_the_stream_closes_with_1000() -> None:
    stream, sink = push(Stream(rate=100.0, count=3))
    assert stream.due(100.0) is not None
    assert stream.due(101.0) is None
    assert seqs(sink) == [0, 1, 2]
    assert sink.close_code == 1000


def test_after_duration_the_stream_closes_with_1000_and_sends_nothing_past_the_end() -> None:
    stream, sink = push(Stream(rate=10.0, duration=0.25))
    assert stream.due(100.0) == pytest.approx(100.1)
    assert stream.due(100.2) == pytest.approx(100.25)  # the end comes before message 3
    assert stream.due(100.25) is None
    assert seqs(sink) == [0, 1, 2]
    assert sink.close_code == 1000


def test_a_closed_connection_leaves_the_schedule() -> None:
    stream, sink = push(Stream(rate=10.0))
    stream.due(100.0)
    sink.closed = True
    assert stream.due(100.5) is None
    assert seqs(sink) == [0]


async def test_the_wheel_runs_every_stream_to_its_end_and_lets_go_of_a_closed_one() -> None:
    loop = asyncio.get_running_loop()
    wheel = Wheel(loop_timers(loop))
    now = loop.time()
    finished, cut = Sink(), Sink()
    wheel.add(Push(cast(WebSocket, finished), Stream(rate=50.0, count=3), now), now)
    early = Push(cast(WebSocket, cut), Stream(rate=50.0), now)
    wheel.add(early, now)
    assert len(wheel) == 2
    await asyncio.sleep(0.03)
    wheel.discard(early)  # what the connection's close does
    await asyncio.sleep(0.15)
    assert seqs(finished) == [0, 1, 2]
    assert finished.close_code == 1000
    assert 1 <= len(cut.sent) <= 3  # at 50/s for 30 ms, then nothing more
    assert len(wheel) == 0


async def test_a_failing_stream_is_logged_and_the_others_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(Sink):
        def send(self, data: Any) -> asyncio.Future[None] | None:
            raise RuntimeError("broken")

    loop = asyncio.get_running_loop()
    wheel = Wheel(loop_timers(loop))
    now = loop.time()
    fine = Sink()
    wheel.add(Push(cast(WebSocket, Broken()), Stream(rate=50.0), now), now)
    wheel.add(Push(cast(WebSocket, fine), Stream(rate=50.0, count=2), now), now)
    await asyncio.sleep(0.1)
    assert seqs(fine) == [0, 1]
    assert "stream failed" in caplog.text
    assert len(wheel) == 0
