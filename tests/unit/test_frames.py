"""Server frames encoded once are valid RFC 6455 frames (checked with the websockets parser)."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from service import frames


def parse(data: bytes) -> Frame:
    reader = StreamReader()
    reader.feed_data(data)
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    raise AssertionError("incomplete frame")


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 1 << 20])
def test_every_length_encoding_round_trips(size: int) -> None:
    payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
    frame = parse(frames.encode(frames.OP_BINARY, payload))
    assert frame.opcode is Opcode.BINARY
    assert frame.fin
    assert frame.data == payload


def test_close_payload_carries_the_code_and_a_cut_reason() -> None:
    payload = frames.close_payload(1001, "x" * 500)
    assert payload[:2] == (1001).to_bytes(2, "big")
    assert len(payload) == 125
