"""Faults on what the server sends, against the real process, seen from independent clients.

`websockets` clients where a library shows what a user sees (codes, reasons, order); raw
sockets where a library would hide it: fragments, the absence of a close frame, pongs that
never come, a hung server whose TCP connection stays open. Durations are asserted as lower
bounds only; order and counts exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.pool.peers import eventually
from tests.support import Metrics, RawClient, Service, client_frame

pytestmark = pytest.mark.e2e

SEND_QUEUE = 256 * 1024
#: uvloop's timers have a granularity of a millisecond: a lower bound on a wait allows for it.
SLACK = 0.005
ROUTES: list[dict[str, Any]] = [
    {"path": "/echo", "mode": "echo"},
    {"path": "/faults", "mode": "echo", "query_overrides": True},
    {"path": "/fragmented", "mode": "echo", "faults": {"fragment": 16}},
    {"path": "/rooms/{room}", "mode": "broadcast", "query_overrides": True},
    {"path": "/deflate", "mode": "echo", "compress": True, "query_overrides": True},
    {
        "path": "/strict",
        "mode": "echo",
        "query_overrides": True,
        "ping_interval": 0.2,
        "ping_timeout": 0.2,
        "idle_timeout": 0.4,
    },
]


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with Service({"ROUTES": ROUTES, "SEND_QUEUE_BYTES": str(SEND_QUEUE)}) as running:
        yield running


class Raw(RawClient):
    """A raw client that keeps each frame's first byte (FIN, RSV bits, opcode)."""

    def frame(self) -> tuple[int, bytes]:
        return self.read_whole_frame()

    def frames_until_end(self, answer_close: bool = False) -> tuple[list[tuple[int, bytes]], str]:
        """Every frame until the link ends: and how it ended ("eof" or "timeout"). With
        `answer_close`, a close frame is answered as a client does."""
        found = []
        while True:
            try:
                found.append(self.frame())
            except ConnectionError:
                return found, "eof"
            except TimeoutError:
                return found, "timeout"
            if answer_close and found[-1][0] == 0x88:
                self.send(client_frame(0x8, found[-1][1][:2]))

    def text(self, text: str) -> None:
        self.send(client_frame(0x1, text.encode()))


def injected(metrics: Metrics, route: str, fault: str) -> float:
    return metrics.value("wsrelay_faults_injected_total", route=route, fault=fault)


async def until_closed(ws: Any) -> list[str]:
    """Every message until the connection closes, whatever its code."""
    got = []
    with contextlib.suppress(ConnectionClosed):
        while True:
            got.append(await asyncio.wait_for(ws.recv(), 10))
    return got


async def received_until_quiet(ws: Any, quiet: float = 0.7) -> list[str]:
    """Messages until none has come for `quiet` seconds (some may be dropped on purpose)."""
    got = []
    while True:
        try:
            got.append(await asyncio.wait_for(ws.recv(), quiet))
        except TimeoutError:
            return got


# -- delay, jitter, drop, seed -----------------------------------------------------------------
async def test_delay_holds_every_answer_and_jitter_never_reorders_them(service: Service) -> None:
    before = injected(service.metrics(), "/faults", "delay")
    async with websockets.connect(service.ws_url("/faults?delay=250ms&jitter=200ms")) as ws:
        sent_at = time.monotonic()
        for index in range(60):
            await ws.send(str(index))
        first = await ws.recv()
        waited = time.monotonic() - sent_at
        rest = [await asyncio.wait_for(ws.recv(), 10) for _ in range(59)]
    assert [first, *rest] == [str(index) for index in range(60)]
    assert waited >= 0.05 - SLACK  # delay - jitter at the least
    assert injected(service.metrics(), "/faults", "delay") - before == 60


async def drops(service: Service, query: str) -> list[str]:
    async with websockets.connect(service.ws_url(f"/faults?{query}")) as ws:
        for index in range(120):
            await ws.send(str(index))
        return await received_until_quiet(ws)


async def test_the_same_seed_drops_the_same_messages(service: Service) -> None:
    metrics = service.metrics()
    before = injected(metrics, "/faults", "drop")
    sent_before = metrics.total("wsrelay_messages_total", route="/faults", direction="out")
    first = await drops(service, "drop=0.3&jitter=20ms&seed=11")
    again = await drops(service, "drop=0.3&jitter=20ms&seed=11")
    other = await drops(service, "drop=0.3&jitter=20ms&seed=12")
    assert first == again
    assert first != other
    assert first == sorted(first, key=int)  # what is not dropped comes in order
    assert 120 * 0.15 < 120 - len(first) < 120 * 0.45
    dropped = (120 - len(first)) * 2 + 120 - len(other)
    assert injected(service.metrics(), "/faults", "drop") - before == dropped

    def sent() -> float:  # a dropped message still counts as sent
        return service.metrics().total("wsrelay_messages_total", route="/faults", direction="out")

    await eventually(lambda: sent() - sent_before == 3 * 120, "every message counted as sent")


# -- fragment, throttle ------------------------------------------------------------------------
def test_fragment_sends_a_first_frame_and_continuations_of_at_most_n_bytes(
    service: Service,
) -> None:
    before = injected(service.metrics(), "/faults", "fragment")
    text = "".join(chr(ord("a") + index % 26) for index in range(100))
    raw = Raw(service.port, "/faults?fragment=16")
    raw.text(text)
    found = [raw.frame() for _ in range(7)]
    raw.close()
    assert [first for first, _ in found] == [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80]
    assert [len(payload) for _, payload in found] == [16] * 6 + [4]
    assert b"".join(payload for _, payload in found) == text.encode()
    assert injected(service.metrics(), "/faults", "fragment") - before == 1


def test_a_route_s_own_faults_apply_and_the_query_is_ignored_without_overrides(
    service: Service,
) -> None:
    raw = Raw(service.port, "/fragmented")
    raw.text("x" * 40)
    assert [raw.frame()[0] for _ in range(3)] == [0x01, 0x00, 0x80]
    raw.close()
    plain = Raw(service.port, "/echo?fragment=16&delay=5s&drop=1")
    plain.text("x" * 40)
    assert plain.frame() == (0x81, b"x" * 40)
    plain.close()


def test_throttle_paces_what_the_server_sends(service: Service) -> None:
    rate = 20_000
    raw = Raw(service.port, f"/faults?throttle={rate}")
    payload = bytes(range(256)) * 160  # 40 kB: two seconds at this rate
    frame = client_frame(0x2, payload)
    started = time.monotonic()  # before the send: the server cannot start earlier
    raw.send(frame)
    total = 0
    ahead = 0.0  # the most the client ever got beyond the pace
    while total < len(payload) + 4:
        chunk = raw.sock.recv(65536)
        assert chunk
        total += len(chunk)
        ahead = max(ahead, total - (time.monotonic() - started) * rate)
    elapsed = time.monotonic() - started
    raw.close()
    assert elapsed >= 1.5
    assert ahead <= rate * 0.05 + 16  # never more than one slice (plus a header) early


# -- close, abort ------------------------------------------------------------------------------
async def test_close_after_closes_with_the_code_and_reason_after_the_nth_answer(
    service: Service,
) -> None:
    before = injected(service.metrics(), "/faults", "close")
    query = "close_after=3&close_code=4003&close_reason=bye&delay=100ms"
    async with websockets.connect(service.ws_url(f"/faults?{query}")) as ws:
        for index in range(5):
            await ws.send(str(index))
        got = await until_closed(ws)
    assert got == ["0", "1", "2"]
    assert ws.close_code == 4003
    assert ws.close_reason == "bye"
    assert injected(service.metrics(), "/faults", "close") - before == 1


def test_close_after_and_abort_after_zero_act_at_once(service: Service) -> None:
    closing = Raw(service.port, "/faults?close_after=0&close_code=4000")
    assert closing.frame() == (0x88, struct.pack("!H", 4000))
    closing.close()
    aborting = Raw(service.port, "/faults?abort_after=0")
    assert aborting.frames_until_end() == ([], "eof")
    aborting.close()


async def test_close_in_closes_after_the_duration(service: Service) -> None:
    before = injected(service.metrics(), "/faults", "close")
    opened = time.monotonic()
    async with websockets.connect(service.ws_url("/faults?close_in=300ms")) as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert time.monotonic() - opened >= 0.3 - SLACK
    assert ws.close_code == 1000
    assert injected(service.metrics(), "/faults", "close") - before == 1


def test_abort_after_drops_the_connection_without_a_close_frame(service: Service) -> None:
    before = injected(service.metrics(), "/faults", "abort")
    raw = Raw(service.port, "/faults?abort_after=2")
    raw.text("one")
    raw.text("two")
    found, end = raw.frames_until_end()
    raw.close()
    assert found == [(0x81, b"one"), (0x81, b"two")]
    assert end == "eof"  # and no close frame came first
    assert injected(service.metrics(), "/faults", "abort") - before == 1


async def test_abort_in_is_seen_by_a_client_library_as_1006(service: Service) -> None:
    opened = time.monotonic()
    async with websockets.connect(service.ws_url("/faults?abort_in=300ms")) as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert time.monotonic() - opened >= 0.3 - SLACK
    assert ws.close_code == 1006
    assert ws.protocol.close_rcvd is None  # no close frame came


# -- no_pong, hang -----------------------------------------------------------------------------
def test_no_pong_leaves_pings_unanswered_while_messages_flow(service: Service) -> None:
    before = injected(service.metrics(), "/faults", "no_pong")
    raw = Raw(service.port, "/faults?no_pong=true")
    raw.send(client_frame(0x9, b"are you there"))
    raw.text("still echoing")
    assert raw.frame() == (0x81, b"still echoing")
    raw.sock.settimeout(0.5)
    found, end = raw.frames_until_end()
    raw.close()
    assert (found, end) == ([], "timeout")
    assert injected(service.metrics(), "/faults", "no_pong") - before == 1
    # Without the fault the same ping is answered.
    plain = Raw(service.port, "/faults")
    plain.send(client_frame(0x9, b"are you there"))
    assert plain.frame() == (0x8A, b"are you there")
    plain.close()


def test_hang_in_stops_answering_but_keeps_the_tcp_connection_open(service: Service) -> None:
    before = injected(service.metrics(), "/faults", "hang")
    raw = Raw(service.port, "/faults?hang_in=300ms")
    raw.text("before")
    assert raw.frame() == (0x81, b"before")
    time.sleep(0.6)
    raw.text("after")
    raw.send(client_frame(0x9, b"ping"))
    raw.sock.settimeout(1.5)
    found, end = raw.frames_until_end()
    assert (found, end) == ([], "timeout")  # no answer, no pong, no close, no EOF
    raw.sock.setblocking(False)
    with pytest.raises(BlockingIOError):  # still open: nothing to read, not EOF
        raw.sock.recv(1)
    raw.close()
    assert injected(service.metrics(), "/faults", "hang") - before == 1


def test_a_hung_connection_outlives_the_server_s_own_ping_and_idle_timeouts(
    service: Service,
) -> None:
    raw = Raw(service.port, "/strict?hang_in=100ms")
    raw.sock.settimeout(2.0)
    found, end = raw.frames_until_end()
    raw.close()
    assert end == "timeout"  # two seconds of silence: no close frame and no EOF
    assert all(first == 0x89 for first, _ in found)  # at most a ping before the hang
    plain = Raw(service.port, "/strict")
    plain.sock.settimeout(10.0)
    found, end = plain.frames_until_end(answer_close=True)  # cut by the ping or idle timeout
    plain.close()
    assert end == "eof" or found[-1][0] == 0x88


def test_a_hung_connection_does_not_hold_up_the_drain() -> None:
    with Service({"ROUTES": ROUTES, "SHUTDOWN_TIMEOUT": "60"}) as fresh:
        raw = Raw(fresh.port, "/faults?hang_in=0")
        timed_out = Raw(fresh.port, "/strict?hang_in=0")  # its ping timeout came and went
        time.sleep(1.0)
        fresh.signal()
        assert fresh.wait(timeout=30) == 0  # not the 60 s the drain may take at most
        ends = [client.frames_until_end()[1] for client in (raw, timed_out)]
        raw.close()
        timed_out.close()
    assert ends == ["eof", "eof"]


def test_a_client_close_is_answered_after_the_delayed_messages(service: Service) -> None:
    raw = Raw(service.port, "/faults?delay=300ms")
    for text in ("a", "b", "c"):
        raw.text(text)
    raw.send(client_frame(0x8, struct.pack("!H", 4001)))
    found, _ = raw.frames_until_end()
    raw.close()
    assert found == [(0x81, b"a"), (0x81, b"b"), (0x81, b"c"), (0x88, struct.pack("!H", 4001))]


async def test_compressed_messages_are_fragmented_and_still_inflate(service: Service) -> None:
    text = "compressible " * 500
    async with websockets.connect(service.ws_url("/deflate?fragment=16&delay=10ms")) as ws:
        assert ws.protocol.extensions  # permessage-deflate was agreed
        for _ in range(3):
            await ws.send(text)
        assert [await asyncio.wait_for(ws.recv(), 10) for _ in range(3)] == [text] * 3
    # Drops are decided before compression: what is kept still inflates, the same each time.
    kept = []
    for _ in range(2):
        async with websockets.connect(service.ws_url("/deflate?drop=0.4&seed=9")) as ws:
            for index in range(60):
                await ws.send(f"{index} {text}")
            kept.append(
                [int(str(message).split()[0]) for message in await received_until_quiet(ws)]
            )
    assert kept[0] == kept[1]
    assert 10 < 60 - len(kept[0]) < 40
    raw = Raw(
        service.port,
        "/deflate?fragment=16",
        headers={"Sec-WebSocket-Extensions": "permessage-deflate"},
    )
    raw.text(text)
    first, _ = raw.frame()
    raw.close()
    assert first == 0x40 | 0x01  # RSV1 (compressed) on the first fragment, FIN clear


# -- isolation, broadcast ----------------------------------------------------------------------
async def test_faults_never_leak_into_another_connection(service: Service) -> None:
    async with (
        websockets.connect(service.ws_url("/faults?drop=1&delay=2s")) as faulted,
        websockets.connect(service.ws_url("/faults")) as neighbour,
        websockets.connect(service.ws_url("/echo")) as plain,
    ):
        for index in range(50):
            await faulted.send(str(index))
            await neighbour.send(str(index))
            await plain.send(str(index))
        for ws in (neighbour, plain):
            assert [await asyncio.wait_for(ws.recv(), 5) for _ in range(50)] == [
                str(index) for index in range(50)
            ]
        assert await received_until_quiet(faulted, 0.5) == []


def test_a_faulted_room_member_gets_its_own_frames_and_the_others_the_shared_ones(
    service: Service,
) -> None:
    faulted = Raw(service.port, "/rooms/frag?fragment=16")
    plain = Raw(service.port, "/rooms/frag")
    sender = Raw(service.port, "/rooms/frag")
    time.sleep(0.1)  # all three joined
    for index in range(5):
        sender.text(f"message {index} " + "." * 30)
    expected = [f"message {index} ".encode() + b"." * 30 for index in range(5)]
    assert [plain.frame() for _ in range(5)] == [(0x81, text) for text in expected]
    for text in expected:
        pieces = []
        while True:
            first, payload = faulted.frame()
            pieces.append(payload)
            if first & 0x80:
                break
        assert b"".join(pieces) == text
        assert len(pieces) == 3
    for raw in (faulted, plain, sender):
        raw.close()


async def test_a_delayed_room_member_is_cut_at_1008_by_the_send_queue(service: Service) -> None:
    before = service.metrics().value(
        "wsrelay_dropped_messages_total", route="/rooms/{room}", reason="slow_consumer"
    )
    async with (
        websockets.connect(service.ws_url("/rooms/slow?delay=20s"), max_queue=None) as delayed,
        websockets.connect(service.ws_url("/rooms/slow"), max_queue=None) as reader,
        websockets.connect(service.ws_url("/rooms/slow")) as sender,
    ):
        await asyncio.sleep(0.1)
        block = "x" * 8192
        for _ in range(3 * SEND_QUEUE // 8192):
            await sender.send(block)
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(delayed.recv(), 10)
        assert delayed.close_code == 1008
        got = [await asyncio.wait_for(reader.recv(), 10) for _ in range(3 * SEND_QUEUE // 8192)]
        assert got == [block] * len(got)
    after = service.metrics().value(
        "wsrelay_dropped_messages_total", route="/rooms/{room}", reason="slow_consumer"
    )
    assert after - before == 1
