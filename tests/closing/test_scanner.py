"""The inbound scanner steps over frames however the stream is cut into reads: it refuses
unmasked client frames, and once a close has started it finds the peer's close frame."""

from __future__ import annotations

import random
import struct

import pytest

from service.closing import FrameScanner, Inbound
from tests.support import client_frame


class Sink:
    """Stands in for aiohttp's frame reader and its queue."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.fed = b""
        self.error: BaseException | None = None
        self.fail_at = fail_at
        self.eof = False

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.fed += data
        if self.fail_at is not None and len(self.fed) > self.fail_at:
            return True, b""
        return False, b""

    def feed_eof(self) -> None:
        self.eof = True

    def set_exception(self, error: BaseException) -> None:
        self.error = error


def stream(sizes: list[int], unmasked_at: int | None = None) -> bytes:
    return b"".join(
        client_frame(0x2, b"x" * size, mask=index != unmasked_at)
        for index, size in enumerate(sizes)
    )


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000, 3, 200]
STEPS = [1, 2, 3, 7, 14, 100, 5000, 70000]


def peer_closed(inbound: Inbound) -> bool:
    return inbound.scanner.peer_closed


def feed(inbound: Inbound, data: bytes, rng: random.Random) -> list[tuple[bool, bytes]]:
    results = []
    pos = 0
    while pos < len(data):
        step = rng.choice(STEPS)
        results.append(inbound.feed_data(data[pos : pos + step]))
        pos += step
    return results


@pytest.mark.parametrize("seed", range(20))
def test_masked_frames_pass_whatever_the_read_boundaries(seed: int) -> None:
    rng = random.Random(seed)
    data = stream(rng.sample(SIZES, len(SIZES)))
    sink = Sink()
    inbound = Inbound(sink, sink, require_mask=True)
    assert set(feed(inbound, data, rng)) == {(False, b"")}
    assert sink.fed == data
    assert sink.error is None
    assert not inbound.discarding


@pytest.mark.parametrize("seed", range(20))
def test_an_unmasked_frame_anywhere_is_refused_with_1002_and_the_rest_discarded(
    seed: int,
) -> None:
    rng = random.Random(seed)
    sizes = rng.sample(SIZES, len(SIZES))
    data = stream(sizes, unmasked_at=rng.randrange(len(sizes)))
    sink = Sink()
    inbound = Inbound(sink, sink, require_mask=True)
    # Never an error to aiohttp's protocol: it would stop reading the socket.
    assert set(feed(inbound, data, rng)) == {(False, b"")}
    assert getattr(sink.error, "code", None) == 1002
    assert inbound.discarding
    assert len(sink.fed) < len(data)


@pytest.mark.parametrize("seed", range(20))
def test_the_peers_close_frame_is_found_behind_a_large_tail(seed: int) -> None:
    rng = random.Random(seed)
    tail = stream(rng.sample(SIZES, len(SIZES)))
    close = client_frame(0x8, struct.pack("!H", 1000) + b"bye")
    # The reader fails somewhere in the first frames (a limit or a bad frame).
    sink = Sink(fail_at=rng.randrange(1, 200))
    inbound = Inbound(sink, sink, require_mask=True)
    data = tail + close
    cut = len(data) - rng.randrange(1, len(close))
    feed(inbound, data[:cut], rng)
    assert inbound.discarding
    assert not peer_closed(inbound)  # the close frame has not arrived whole
    feed(inbound, data[cut:], rng)
    assert peer_closed(inbound)
    assert len(sink.fed) < len(data)  # the tail never reached the reader


def test_unmasked_server_frames_pass_on_the_client_side() -> None:
    data = stream([10, 70000, 0], unmasked_at=1)
    sink = Sink()
    inbound = Inbound(sink, sink, require_mask=False)
    assert inbound.feed_data(data) == (False, b"")
    assert sink.fed == data
    assert sink.error is None


def test_a_close_frame_split_in_its_header_is_found_once_whole() -> None:
    scanner = FrameScanner()
    close = client_frame(0x8, struct.pack("!H", 1000), mask=False)
    for index in range(len(close)):
        scanner.scan(close[index : index + 1])
        assert scanner.peer_closed is (index == len(close) - 1)


def test_eof_is_passed_on_and_remembered() -> None:
    sink = Sink()
    inbound = Inbound(sink, sink, require_mask=True)
    inbound.feed_eof()
    assert sink.eof
    assert inbound.eof
