"""Proxy passthrough end to end: raw frames on both hops, wsrelay as a process between them.

The client is a raw socket (tests/support.py `RawClient`) and the upstream records every frame
as it arrived (rawupstream.py), so the tests see what each hop carries: fragments kept,
payloads byte-exact, the client's mask key never reused toward the upstream, and every check
of the decoded path (UTF-8, limits, header errors, pings, counts) still made.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

import pytest

from tests.support import RawClient, Service, client_frame

from .peers import relay
from .rawupstream import RawUpstream, server_frame

pytestmark = pytest.mark.e2e

LIMIT = 100_000
ACCENT = "\u00e9"  # two bytes in UTF-8


@pytest.fixture(scope="module")
def upstream() -> Iterator[RawUpstream]:
    running = RawUpstream().start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def service(upstream: RawUpstream) -> Iterator[Service]:
    routes = [
        {"path": "/raw", "mode": "proxy", "upstream": "raw", "max_message_bytes": LIMIT},
        {"path": "/faulty", "mode": "proxy", "upstream": "raw", "query_overrides": True},
    ]
    with relay({"raw": {"url": upstream.url("/")}}, routes) as running:
        yield running


def masked(first: int, payload: bytes, key: bytes | None = None) -> bytes:
    """A client frame with this first byte (FIN, RSV, opcode), masked with `key`."""
    return client_frame(first & 0x7F, payload, fin=bool(first & 0x80), key=key)


def connected(service: Service, upstream: RawUpstream) -> RawClient:
    """A client whose messages are relayed: the first may arrive while the upstream is still
    being connected (then it takes the decoded path), the second is where relaying starts."""
    client = RawClient(service.port, "/raw")
    assert client.status == 101
    for _ in range(2):
        client.send(masked(0x81, b"warm-up"))
        assert client.read_whole_frame() == (0x81, b"warm-up")
    upstream.frames.clear()
    upstream.closes.clear()
    return client


def eventually(check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_frames_pass_as_they_came_and_the_client_key_never_reaches_the_upstream(
    service: Service, upstream: RawUpstream
) -> None:
    client = connected(service, upstream)
    zero = b"\x00\x00\x00\x00"  # a client masking with zeros writes plaintext on its own hop
    sent = [
        (0x81, b"hello"),
        (0x82, bytes(range(200))),  # a 16-bit length
        (0x01, b"fragm"),  # a text in three fragments
        (0x00, "ent\u00e9".encode()[:4]),  # the two-byte character split across two
        (0x80, "ent\u00e9".encode()[4:]),
        (0x82, os.urandom(70_000)),  # a 64-bit length, in several reads
        (0x81, b""),
    ]
    for first, payload in sent:
        client.send(masked(first, payload, zero))
    # Fragments come back as fragments: the upstream's frames reached the client as they came.
    assert [client.read_whole_frame() for _ in sent] == sent
    seen = upstream.data_frames()
    assert [(f.first, f.payload) for f in seen] == sent
    keys = [f.key for f in seen]
    assert None not in keys
    assert zero not in keys
    assert len(set(keys)) == len(keys)  # a fresh key per frame
    client.close()


def test_short_frames_in_one_read_each_get_a_key_the_client_cannot_know(
    service: Service, upstream: RawUpstream
) -> None:
    """The fast path re-masks a frame in one pass with fresh random bytes: the key toward the
    upstream is (client key ^ those bytes), so a client reusing one key for every frame still
    sees a different key on each, never its own, and every payload arrives byte-exact."""
    client = connected(service, upstream)
    key = b"\x5a\xa5\x0f\xf0"
    sent = [
        (0x81, f"text {i} {ACCENT * (i % 4)}".encode()) if i % 2 else (0x82, os.urandom(i))
        for i in range(60)
    ]
    client.send(b"".join(masked(first, payload, key) for first, payload in sent))
    assert [client.read_whole_frame() for _ in sent] == sent
    seen = upstream.data_frames()
    assert [(f.first, f.payload) for f in seen] == sent
    keys = [f.key for f in seen]
    assert key not in keys
    assert len(set(keys)) == len(keys)
    client.close()


def test_a_clients_invalid_utf8_is_1007_at_the_fragment_that_breaks_it(
    service: Service, upstream: RawUpstream
) -> None:
    client = connected(service, upstream)
    client.send(masked(0x01, b"valid so far"))
    client.send(masked(0x00, b"\xc3\x28"))  # an invalid sequence; the message is not over
    assert client.close_code() == 1007
    eventually(lambda: upstream.closes == [1007])
    assert [f.payload for f in upstream.data_frames()] == [b"valid so far"]


def test_an_upstreams_invalid_utf8_reaches_the_client_as_1007(
    service: Service, upstream: RawUpstream
) -> None:
    client = connected(service, upstream)
    bad = server_frame(0x81, b"ok") + server_frame(0x81, b"caf\xe9")  # Latin-1, not UTF-8
    client.send(masked(0x81, b"send:" + bad.hex().encode()))
    assert client.read_whole_frame() == (0x81, b"ok")
    assert client.close_code() == 1007
    eventually(lambda: upstream.closes == [1007])  # wsrelay failed the upstream, as it did


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([bytes((0x82, 5)) + b"plain"], 1002),  # unmasked
        ([masked(0xC2, b"rsv1")], 1002),  # a reserved bit without an extension
        ([masked(0x83, b"opcode 3")], 1002),
        ([masked(0x80, b"continues nothing")], 1002),
        ([masked(0x01, b"a"), masked(0x81, b"new message inside a fragmented one")], 1002),
        ([masked(0x09, b"fragmented ping")], 1002),
        ([masked(0x02, bytes(LIMIT)), masked(0x80, b"1")], 1009),  # one byte over, in two
    ],
    ids=["unmasked", "rsv1", "opcode", "continuation", "interleaved", "control-fin", "1009"],
)
def test_a_bad_header_fails_the_client_with_the_decoded_paths_code(
    service: Service, upstream: RawUpstream, frames: list[bytes], code: int
) -> None:
    client = connected(service, upstream)
    for frame in frames:
        client.send(frame)
    assert client.close_code() == code
    eventually(lambda: upstream.closes == [code])


def test_a_message_of_exactly_the_limit_passes(service: Service, upstream: RawUpstream) -> None:
    client = connected(service, upstream)
    payload = os.urandom(LIMIT)
    client.send(masked(0x02, payload[:1000]) + masked(0x80, payload[1000:]))
    assert client.read_whole_frame() == (0x02, payload[:1000])
    assert client.read_whole_frame() == (0x80, payload[1000:])
    client.close()


def test_pings_are_answered_by_wsrelay_on_each_hop_and_not_forwarded(
    service: Service, upstream: RawUpstream
) -> None:
    client = connected(service, upstream)
    client.send(masked(0x89, b"client ping") + masked(0x81, b"after the ping"))
    assert client.read_whole_frame() == (0x8A, b"client ping")
    assert client.read_whole_frame() == (0x81, b"after the ping")
    assert [f.payload for f in upstream.frames] == [b"after the ping"]
    # The upstream's ping is answered by wsrelay too, between two relayed frames.
    pinged = b"".join(
        (server_frame(0x81, b"one"), server_frame(0x89, b"up ping"), server_frame(0x81, b"two"))
    )
    client.send(masked(0x81, b"send:" + pinged.hex().encode()))
    assert client.read_whole_frame() == (0x81, b"one")
    assert client.read_whole_frame() == (0x81, b"two")
    eventually(lambda: any(f.first == 0x8A and f.payload == b"up ping" for f in upstream.frames))
    client.close()


def test_relayed_messages_and_bytes_are_counted_as_decoded_ones(
    service: Service, upstream: RawUpstream
) -> None:
    before = service.metrics()
    client = connected(service, upstream)
    client.send(masked(0x81, b"abc") + masked(0x82, b"12345") + masked(0x01, b"x"))
    client.send(masked(0x80, b"yz"))
    frames = [client.read_whole_frame() for _ in range(4)]
    assert frames == [(0x81, b"abc"), (0x82, b"12345"), (0x01, b"x"), (0x80, b"yz")]
    client.send(masked(0x88, struct.pack("!H", 1000)))
    assert client.close_code() == 1000
    client.close()

    def grew(name: str, **labels: str) -> float:
        now = service.metrics().total(name, route="/raw", **labels)
        return now - before.total(name, route="/raw", **labels)

    # Two warm-up texts, "abc" and the fragmented "xyz" are texts; "12345" is binary.
    eventually(lambda: grew("wsrelay_messages_total", direction="in", type="text") == 4)
    assert grew("wsrelay_messages_total", direction="in", type="binary") == 1
    assert grew("wsrelay_messages_total", direction="out", type="text") == 4
    assert grew("wsrelay_messages_total", direction="out", type="binary") == 1
    assert grew("wsrelay_message_bytes_total", direction="in") == 7 + 7 + 3 + 5 + 3
    assert grew("wsrelay_message_bytes_total", direction="out") == 7 + 7 + 3 + 5 + 3


def test_a_connection_with_faults_keeps_the_decoded_path(
    service: Service, upstream: RawUpstream
) -> None:
    client = RawClient(service.port, "/faulty?handshake_delay=1ms")
    assert client.status == 101
    for _ in range(3):  # past the point where a plain route relays
        client.send(masked(0x01, b"frag") + masked(0x80, b"ment"))
        # Decoded: the message is reassembled before it goes on, and so is its echo.
        assert client.read_whole_frame() == (0x81, b"fragment")
    client.close()
    plain = RawClient(service.port, "/faulty")  # the same route, no fault asked for: relayed
    for _ in range(3):
        plain.send(masked(0x01, b"frag") + masked(0x80, b"ment"))
    frames: list[tuple[int, bytes]] = []
    while sum(first & 0x80 for first, _ in frames) < 3 * 0x80:  # three whole messages
        frames.append(plain.read_whole_frame())
    assert frames[-2:] == [(0x01, b"frag"), (0x80, b"ment")]
    plain.close()


def test_a_close_right_behind_relayed_frames_in_one_read_follows_them_upstream(
    service: Service, upstream: RawUpstream
) -> None:
    client = connected(service, upstream)
    client.send(
        masked(0x81, b"first") + masked(0x82, b"second") + masked(0x88, struct.pack("!H", 4001))
    )
    assert client.close_code() == 4001
    eventually(lambda: upstream.closes == [4001])
    assert [f.payload for f in upstream.data_frames()] == [b"first", b"second"]
