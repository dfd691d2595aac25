"""The unmasked-frame guard steps over frames however the stream is cut into reads."""

from __future__ import annotations

import random

import pytest

from service.wire import MaskGuard
from tests.support import client_frame


class Sink:
    def __init__(self) -> None:
        self.fed = b""
        self.error: BaseException | None = None

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.fed += data
        return False, b""

    def feed_eof(self) -> None:
        pass

    def set_exception(self, error: BaseException) -> None:
        self.error = error


def stream(sizes: list[int], unmasked_at: int | None = None) -> bytes:
    return b"".join(
        client_frame(0x2, b"x" * size, mask=index != unmasked_at)
        for index, size in enumerate(sizes)
    )


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000, 3, 200]


@pytest.mark.parametrize("seed", range(20))
def test_masked_frames_pass_whatever_the_read_boundaries(seed: int) -> None:
    rng = random.Random(seed)
    data = stream(rng.sample(SIZES, len(SIZES)))
    sink = Sink()
    guard = MaskGuard(sink, sink)
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 3, 7, 14, 100, 5000, 70000])
        assert guard.feed_data(data[pos : pos + step]) == (False, b"")
        pos += step
    assert sink.fed == data
    assert sink.error is None


@pytest.mark.parametrize("seed", range(20))
def test_an_unmasked_frame_anywhere_is_refused_with_1002(seed: int) -> None:
    rng = random.Random(seed)
    sizes = rng.sample(SIZES, len(SIZES))
    data = stream(sizes, unmasked_at=rng.randrange(len(sizes)))
    sink = Sink()
    guard = MaskGuard(sink, sink)
    results = []
    pos = 0
    while pos < len(data):
        step = rng.choice([1, 2, 3, 7, 14, 100, 5000, 70000])
        results.append(guard.feed_data(data[pos : pos + step]))
        pos += step
    assert (True, b"") in results
    assert sink.error is not None
    assert getattr(sink.error, "code", None) == 1002
