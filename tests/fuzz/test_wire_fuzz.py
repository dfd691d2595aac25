"""Hostile peers on raw sockets against a real `wsrelay serve`: bad frames, bad handshakes.

Every connection must end the way RFC 6455 says (1002 protocol error, 1007 invalid UTF-8, 1009
too big) or, before the upgrade, with a 4xx; the process must never die, answer 500 or log a
traceback for a peer's mistake. Hypothesis draws the inputs; examples are bounded so the file
runs in well under a minute.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.churn.observe import tracebacks
from tests.fuzz.rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    Outcome,
    close_frame,
    exchange,
    frame,
    handshake,
)
from tests.support import Service, http_get

pytestmark = pytest.mark.e2e

MAX_MESSAGE = 65536
PATHS = ["/echo", "/rooms/fuzz"]
FUZZ = settings(
    max_examples=40,
    deadline=timedelta(seconds=15),  # a hang guard: each example normally takes milliseconds
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    routes = [
        {"path": "/echo", "mode": "echo", "max_message_bytes": MAX_MESSAGE, "ping_interval": 0},
        {"path": "/rooms/{room}", "mode": "broadcast", "max_message_bytes": MAX_MESSAGE},
    ]
    with Service({"ROUTES": routes}) as running:
        yield running


def assert_survived(service: Service) -> None:
    """Alive, healthy, no connection left behind, and no traceback for anything a peer did."""
    assert service.process is not None
    assert service.process.poll() is None, service.stderr
    assert http_get(service.url("/healthz"))[0] == 200
    assert not tracebacks(service.stderr), "\n".join(tracebacks(service.stderr))


def send_frames(service: Service, path: str, data: bytes, half_close: bool = False) -> Outcome:
    outcome = exchange(service.port, handshake(path, service.port), data, half_close)
    assert outcome.status == 101, outcome.response_head
    return outcome


def fuzz(test: Callable[..., None], service: Service, **strategies: Any) -> None:
    """Run `test(service, **drawn)` under hypothesis, then check the process survived it all."""
    given(**strategies)(FUZZ(lambda **drawn: test(service, **drawn)))()
    assert_survived(service)


# -- strategies ------------------------------------------------------------------------------------
payloads = st.binary(max_size=300)
texts = st.text(max_size=100).map(str.encode)
paths = st.sampled_from(PATHS)


@st.composite
def valid_prefix(draw: st.DrawFn) -> bytes:
    """A few well-formed messages (possibly fragmented) and pings before the bad frame."""
    out = b""
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["text", "binary", "fragmented", "ping"]))
        if kind == "text":
            out += frame(OP_TEXT, draw(texts))
        elif kind == "binary":
            out += frame(OP_BINARY, draw(payloads))
        elif kind == "ping":
            out += frame(OP_PING, draw(st.binary(max_size=125)))
        else:
            out += frame(OP_BINARY, draw(payloads), fin=False)
            out += frame(OP_PING, b"between fragments")
            out += frame(OP_CONT, draw(payloads))
    return out


_INVALID_CLOSE_CODES = st.one_of(
    st.integers(0, 999),
    st.sampled_from([1004, 1005, 1006, 1015]),
    st.integers(1016, 2999),
    st.integers(5000, 65535),
)


@st.composite
def protocol_violation(draw: st.DrawFn) -> bytes:
    """One frame (or pair) that RFC 6455 says the server must fail with 1002."""
    kind = draw(
        st.sampled_from(
            [
                "reserved_opcode",
                "rsv_bits",
                "long_control",
                "fragmented_control",
                "orphan_continuation",
                "interleaved_message",
                "one_byte_close",
                "invalid_close_code",
            ]
        )
    )
    if kind == "reserved_opcode":
        opcode = draw(st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]))
        return frame(opcode, draw(payloads))
    if kind == "rsv_bits":
        return frame(
            draw(st.sampled_from([OP_TEXT, OP_BINARY, OP_PING])), b"x", rsv=draw(st.integers(1, 7))
        )
    if kind == "long_control":
        opcode = draw(st.sampled_from([OP_PING, OP_PONG, OP_CLOSE]))
        body = draw(st.binary(min_size=126, max_size=2000))
        if opcode == OP_CLOSE:
            body = struct.pack("!H", 1000) + body
        return frame(opcode, body)
    if kind == "fragmented_control":
        return frame(draw(st.sampled_from([OP_PING, OP_PONG, OP_CLOSE])), b"", fin=False)
    if kind == "orphan_continuation":
        return frame(OP_CONT, draw(payloads), fin=draw(st.booleans()))
    if kind == "interleaved_message":
        return frame(OP_TEXT, b"first", fin=False) + frame(
            draw(st.sampled_from([OP_TEXT, OP_BINARY])), b"second"
        )
    if kind == "one_byte_close":
        return frame(OP_CLOSE, draw(st.binary(min_size=1, max_size=1)))
    return close_frame(draw(_INVALID_CLOSE_CODES))


def _invalid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


invalid_utf8 = st.binary(min_size=1, max_size=200).filter(_invalid_utf8)


# -- frames after the upgrade ------------------------------------------------------------------
def test_protocol_violations_close_with_1002(service: Service) -> None:
    def check(service: Service, path: str, prefix: bytes, bad: bytes) -> None:
        outcome = send_frames(service, path, prefix + bad)
        assert outcome.close_code == 1002, outcome
        assert outcome.eof, "the server kept the connection open after failing it"

    fuzz(check, service, path=paths, prefix=valid_prefix(), bad=protocol_violation())


def test_invalid_utf8_closes_with_1007(service: Service) -> None:
    def check(service: Service, path: str, body: bytes, split: int, in_reason: bool) -> None:
        if in_reason:
            data = close_frame(1000, body[:120])
        elif split and split < len(body):
            data = frame(OP_TEXT, body[:split], fin=False) + frame(OP_CONT, body[split:])
        else:
            data = frame(OP_TEXT, body)
        outcome = send_frames(service, path, data)
        assert outcome.close_code == 1007, outcome
        assert outcome.eof

    fuzz(
        check,
        service,
        path=paths,
        body=invalid_utf8,
        split=st.integers(0, 200),
        in_reason=st.booleans(),
    )


def test_messages_over_the_limit_close_with_1009(service: Service) -> None:
    def check(service: Service, path: str, declared: int, fragmented: bool) -> None:
        if fragmented:  # each fragment fits, the message does not
            half = b"x" * (MAX_MESSAGE // 2 + 1)
            data = frame(OP_BINARY, half, fin=False) + frame(OP_CONT, half)
        else:  # only the header comes: the server must not wait for (or allocate) the payload
            data = frame(OP_BINARY, declared_length=declared)
        outcome = send_frames(service, path, data)
        # A length with the top bit set is malformed as well as too big: either answer is right.
        expected = {1009} if declared < 1 << 63 else {1002, 1009}
        assert outcome.close_code in expected, outcome
        assert outcome.eof

    fuzz(
        check,
        service,
        path=paths,
        declared=st.integers(MAX_MESSAGE + 1, (1 << 64) - 1),
        fragmented=st.booleans(),
    )


def test_unmasked_client_frames_close_with_1002(service: Service) -> None:
    """RFC 6455 5.1: a server MUST close the connection on a frame that is not masked."""
    outcome = send_frames(service, "/echo", frame(OP_TEXT, b"not masked", mask=False))
    assert outcome.close_code == 1002, outcome
    assert_survived(service)


def _mutate(data: bytes, flips: list[tuple[int, int]], cut: int | None) -> bytes:
    buffer = bytearray(data)
    for position, bit in flips:
        buffer[position % len(buffer)] ^= 1 << bit
    return bytes(buffer[:cut] if cut is not None else buffer)


def test_mutated_frames_and_half_open_sockets_never_hurt_the_process(service: Service) -> None:
    """Random damage to valid traffic, then EOF from our side: whatever the server answers, it
    answers as a peer (never 1011 internal error) and lets the half-open socket go."""

    def check(
        service: Service,
        path: str,
        valid: bytes,
        flips: list[tuple[int, int]],
        cut: int | None,
        junk: bytes,
    ) -> None:
        data = _mutate(valid + frame(OP_TEXT, b"last"), flips, cut) + junk
        outcome = send_frames(service, path, data, half_close=True)
        assert outcome.eof, "a half-closed connection was kept open"
        assert outcome.close_code != 1011, outcome

    fuzz(
        check,
        service,
        path=paths,
        valid=valid_prefix(),
        flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 7)), max_size=4),
        cut=st.none() | st.integers(0, 400),
        junk=st.binary(max_size=40),
    )


# -- handshakes ----------------------------------------------------------------------------------
header_names = st.sampled_from(
    ["Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Host", "Origin"]
)
header_values = st.one_of(
    st.none(),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
    st.sampled_from(["websocket", "upgrade", "13", "8", "99", "", "dGhlIHNhbXBsZSBub25jZQ=="]),
)


def test_malformed_handshakes_get_a_4xx_never_a_500(service: Service) -> None:
    def check(
        service: Service,
        method: str,
        path: str,
        changes: dict[str, str | None],
        extra: bytes,
    ) -> None:
        request = handshake(path, service.port, changes).replace(b"GET", method.encode(), 1)
        # After a 101, a close frame ends the connection at once instead of at the read deadline.
        outcome = exchange(service.port, request[:-2] + extra + b"\r\n", close_frame(1000))
        assert outcome.status == 101 or 400 <= outcome.status < 500, outcome.response_head

    fuzz(
        check,
        service,
        method=st.sampled_from(["GET", "POST", "HEAD", "PUT", "get", "BREW"]),
        path=st.sampled_from([*PATHS, "/nope", "/rooms/", "/echo?x=%zz", "/%00", "/" + "a" * 300]),
        changes=st.dictionaries(header_names, header_values, max_size=4),
        extra=st.sampled_from([b"", b"X-Pad: " + b"a" * 9000 + b"\r\n", b"Bad Header\r\n"]),
    )


def test_garbage_instead_of_http_gets_a_4xx(service: Service) -> None:
    def check(service: Service, junk: bytes) -> None:
        outcome = exchange(service.port, junk + b"\r\n\r\n")
        assert outcome.status == 0 or 400 <= outcome.status < 500, outcome.response_head

    fuzz(check, service, junk=st.binary(min_size=1, max_size=300))


def test_connections_that_stop_mid_handshake_are_released(service: Service) -> None:
    def check(service: Service, cut: int) -> None:
        request = handshake("/echo", service.port)
        outcome = exchange(service.port, request[: cut % len(request)], half_close_request=True)
        assert outcome.eof, "a client that stopped mid-handshake was kept"
        assert outcome.status == 0 or 400 <= outcome.status < 500, outcome.response_head

    fuzz(check, service, cut=st.integers(0, 500))
    assert service.metrics().total("wsrelay_connections_active") == 0
