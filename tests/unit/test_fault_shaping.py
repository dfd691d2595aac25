"""Fault decisions with explicit clocks: drops, delays with order kept, seeds, pace, frames."""

from __future__ import annotations

import random
import struct

from hypothesis import given
from hypothesis import strategies as st

from service import frames
from service.faults.framing import FrameScanner, fragment, frame_bytes
from service.faults.shaping import PACE_TICK, Pace, Schedule


def plan(seed: int, count: int, *, drop: float, jitter: float) -> list[float | None]:
    schedule = Schedule(random.Random(seed), delay=0.2, jitter=jitter, drop=drop)
    return [schedule.message(now=index * 0.01) for index in range(count)]


def test_the_same_seed_gives_the_same_drops_and_delays() -> None:
    first = plan(7, 500, drop=0.3, jitter=0.1)
    assert first == plan(7, 500, drop=0.3, jitter=0.1)
    assert first != plan(8, 500, drop=0.3, jitter=0.1)
    dropped = first.count(None)
    assert 100 < dropped < 200  # 30 % of 500, loosely


def test_jitter_never_reorders_and_every_wait_is_within_delay_plus_or_minus_jitter() -> None:
    schedule = Schedule(random.Random(1), delay=0.2, jitter=0.15, drop=0.0)
    dues = []
    for index in range(1000):
        now = index * 0.001
        due = schedule.message(now)
        assert due is not None
        assert due >= now + 0.05 - 1e-9
        dues.append(due)
    assert dues == sorted(dues)
    # Without the order rule some would leave before their predecessor: jitter is real.
    raw = Schedule(random.Random(1), delay=0.2, jitter=0.15, drop=0.0)
    assert len({raw.message(0.0) for _ in range(50)}) > 1


def test_a_wait_below_zero_is_no_wait() -> None:
    schedule = Schedule(random.Random(3), delay=0.0, jitter=0.5, drop=0.0)
    for index in range(200):
        due = schedule.message(float(index))
        assert due is not None
        assert due >= index


def test_control_frames_are_not_delayed_but_wait_for_delayed_messages() -> None:
    schedule = Schedule(random.Random(1), delay=1.0, jitter=0.0, drop=0.0)
    assert schedule.control(0.0) == 0.0
    assert schedule.message(0.0) == 1.0
    assert schedule.control(0.5) == 1.0  # behind the message
    assert schedule.control(2.0) == 2.0


def test_drop_one_drops_everything_and_drop_zero_draws_nothing() -> None:
    rng = random.Random(5)
    assert all(due is None for due in plan(5, 50, drop=1.0, jitter=0.0))
    schedule = Schedule(rng, delay=0.1, jitter=0.0, drop=0.0)
    state = rng.getstate()
    schedule.message(0.0)
    assert rng.getstate() == state  # no draw: other faults' sequences do not shift


def test_pace_writes_one_slice_per_tick_and_earns_no_credit_when_idle() -> None:
    pace = Pace(rate=1000)
    assert pace.slice == round(1000 * PACE_TICK)
    now = 0.0
    written = 0
    times = []
    while written < 1000:
        count, back = pace.take(now, 1000 - written)
        written += count
        times.append(now)
        if back:
            now = back
    assert written == 1000
    assert times[-1] >= 0.95 - 1e-9  # 1000 bytes at 1000 B/s: a second, minus the last slice
    # After a long idle spell the first take is again at most one slice.
    count, back = pace.take(100.0, 10_000)
    assert count == pace.slice
    assert back > 100.0


def test_a_small_rate_still_moves_a_byte_at_a_time() -> None:
    pace = Pace(rate=10)
    assert pace.slice == 1
    assert pace.take(0.0, 5) == (1, 0.1)
    assert pace.take(0.05, 4) == (0, 0.1)


def parse(data: bytes) -> list[tuple[int, bytes]]:
    return list(FrameScanner().feed(data))


def test_fragments_are_a_first_frame_and_continuations_of_at_most_n_bytes() -> None:
    payload = bytes(range(256)) * 4
    pieces = fragment(0x80 | frames.OP_BINARY, payload, 100)
    parsed = [parse(piece)[0] for piece in pieces]
    assert len(parsed) == 11
    assert parsed[0][0] == frames.OP_BINARY  # FIN clear
    assert all(first == 0x00 for first, _ in parsed[1:-1])
    assert parsed[-1][0] == 0x80  # FIN, continuation
    assert all(len(body) <= 100 for _, body in parsed)
    assert b"".join(body for _, body in parsed) == payload


def test_a_compressed_message_keeps_rsv1_on_its_first_fragment_only() -> None:
    pieces = fragment(0x80 | 0x40 | frames.OP_TEXT, b"x" * 30, 10)
    firsts = [parse(piece)[0][0] for piece in pieces]
    assert firsts == [0x40 | frames.OP_TEXT, 0x00, 0x80]


def test_a_message_that_fits_stays_one_frame() -> None:
    (piece,) = fragment(0x80 | frames.OP_TEXT, b"hello", 5)
    assert piece == frames.encode(frames.OP_TEXT, b"hello")


@given(
    st.lists(st.binary(max_size=70_000), min_size=1, max_size=6),
    st.lists(st.integers(min_value=1, max_value=9000), min_size=1, max_size=30),
)
def test_the_scanner_finds_whole_frames_however_the_bytes_are_cut(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(frames.encode(frames.OP_BINARY, payload) for payload in payloads)
    scanner = FrameScanner()
    found: list[tuple[int, bytes]] = []
    pos = 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        found.extend(scanner.feed(stream[pos : pos + cut]))
        pos += cut
        if pos >= len(stream):
            break
    found.extend(scanner.feed(stream[pos:]))
    assert found == [(0x80 | frames.OP_BINARY, payload) for payload in payloads]
    assert scanner.pending == 0


def test_frame_bytes_keeps_the_first_byte() -> None:
    close = frame_bytes(0x80 | frames.OP_CLOSE, struct.pack("!H", 4000) + b"bye")
    assert parse(close) == [(0x88, b"\x0f\xa0bye")]
