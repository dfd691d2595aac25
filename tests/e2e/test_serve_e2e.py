"""End to end: `wsrelay serve` as a process, spoken to by `websockets` and by raw frames."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import time
from collections.abc import Iterator

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Origin

from tests.support import RawClient, Service, clean_env, client_frame, http_get, run_wsrelay

pytestmark = pytest.mark.e2e

TOKEN = "s3cret-token-value"
ROUTES = [
    {"path": "/echo", "mode": "echo"},
    {"path": "/rooms/{room}", "mode": "broadcast"},
    {"path": "/everyone/{room}", "mode": "broadcast", "echo_to_sender": True},
    {"path": "/private", "mode": "echo", "auth": "token"},
    {
        "path": "/web",
        "mode": "echo",
        "allowed_origins": ["https://app.example.com", "https://*.example.org"],
    },
    {"path": "/hello", "mode": "echo", "greeting": "hello from {hostname}"},
    {"path": "/tiny", "mode": "echo", "max_message_bytes": 10, "max_connections": 2},
    {"path": "/lazy", "mode": "echo", "idle_timeout": 0.3, "ping_interval": 0},
]


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    with Service(
        {
            "ROUTES": ROUTES,
            "AUTH_TOKENS": TOKEN,
            "PING_INTERVAL": "0.2",
            "SEND_QUEUE_BYTES": "65536",
        }
    ) as running:
        yield running


async def test_echo_is_byte_exact_for_text_binary_empty_and_one_mib(service: Service) -> None:
    messages: list[str | bytes] = [
        "hello",
        "héllo wörld ✓",
        b"\x00\x01\xff",
        b"",
        "",
        os.urandom(1 << 20),
        "x" * (1 << 20),
    ]
    async with websockets.connect(service.ws_url("/echo"), max_size=None) as ws:
        for message in messages:
            await ws.send(message)
            reply = await ws.recv()
            assert type(reply) is type(message)
            assert reply == message


async def test_rooms_are_isolated_and_the_sender_is_skipped(service: Service) -> None:
    a1 = await websockets.connect(service.ws_url("/rooms/a"))
    a2 = await websockets.connect(service.ws_url("/rooms/a"))
    b1 = await websockets.connect(service.ws_url("/rooms/b"))
    other_route = await websockets.connect(service.ws_url("/everyone/a"))
    try:
        await a1.send("to a")
        await a1.send(b"\x01\x02")
        assert await a2.recv() == "to a"
        assert await a2.recv() == b"\x01\x02"
        await b1.send("to b")  # the marker: b1's own room still works, and a1 never sees it
        for ws in (a1, other_route):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.3)
    finally:
        for ws in (a1, a2, b1, other_route):
            await ws.close()


async def test_bursts_from_two_senders_reach_the_room_whole_and_in_order(
    service: Service,
) -> None:
    # Each sender writes its burst in one TCP write, so the server reads many frames in one
    # chunk and writes a room's frames of one loop pass as one buffer per member: nothing may
    # be lost, reordered per sender, or sent back to its sender, and the counts stay exact.
    def burst(name: str) -> list[str | bytes]:
        return [*(f"{name}{i}" for i in range(200)), b"\x00" + name.encode()]

    def sent_by(name: str, message: str | bytes) -> bool:
        if isinstance(message, str):
            return message.startswith(name)
        return message == b"\x00" + name.encode()

    route = "/rooms/{room}"
    before = service.metrics().total("wsrelay_messages_total", route=route, direction="out")
    senders = {name: RawClient(service.port, "/rooms/burst") for name in ("a", "b")}
    receiver = await websockets.connect(service.ws_url("/rooms/burst"))
    try:
        for name, raw in senders.items():
            raw.send(
                b"".join(
                    client_frame(0x1, m.encode()) if isinstance(m, str) else client_frame(0x2, m)
                    for m in burst(name)
                )
            )
        got = [await asyncio.wait_for(receiver.recv(), 5) for _ in range(402)]
        for name in senders:
            assert [m for m in got if sent_by(name, m)] == burst(name)
        for name, raw in senders.items():  # each got the other's burst and none of its own
            frames = [raw.read_frame() for _ in range(201)]
            other = "b" if name == "a" else "a"
            assert [p.decode() if op == 0x1 else p for op, p in frames] == burst(other)
        after = before
        for _ in range(50):
            after = service.metrics().total("wsrelay_messages_total", route=route, direction="out")
            if after - before >= 4 * 201:
                break
            await asyncio.sleep(0.05)
        assert after - before == 4 * 201  # the receiver 402, a and b 201 each
    finally:
        await receiver.close()
        for raw in senders.values():
            raw.close()


async def test_echo_to_sender_includes_the_sender(service: Service) -> None:
    async with websockets.connect(service.ws_url("/everyone/x")) as ws:
        await ws.send("me too")
        assert await ws.recv() == "me too"


async def test_token_route_refuses_401_and_accepts_header_or_query(service: Service) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(service.ws_url("/private"))
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        await websockets.connect(
            service.ws_url("/private"), additional_headers={"Authorization": "Bearer wrong"}
        )
    async with websockets.connect(
        service.ws_url("/private"), additional_headers={"Authorization": f"Bearer {TOKEN}"}
    ) as ws:
        await ws.send("in")
        assert await ws.recv() == "in"
    async with websockets.connect(service.ws_url(f"/private?token={TOKEN}")) as ws:
        await ws.send("in")
        assert await ws.recv() == "in"
    assert TOKEN not in service.stderr


async def test_origin_refused_403_allowed_exact_and_wildcard(service: Service) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(service.ws_url("/web"), origin=Origin("https://evil.example.com"))
    assert refused.value.response.status_code == 403
    for origin in ("https://app.example.com", "https://a.b.example.org"):
        async with websockets.connect(service.ws_url("/web"), origin=Origin(origin)) as ws:
            await ws.send(origin)
            assert await ws.recv() == origin


async def test_greeting_names_the_host(service: Service) -> None:
    async with websockets.connect(service.ws_url("/hello")) as ws:
        greeting = await ws.recv()
        assert greeting == f"hello from {os.uname().nodename}"


async def test_too_big_is_1009_and_invalid_utf8_is_1007(service: Service) -> None:
    async with websockets.connect(service.ws_url("/tiny")) as ws:
        await ws.send("0123456789")  # exactly the limit passes
        assert await ws.recv() == "0123456789"
        await ws.send("0123456789!")
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009
    raw = RawClient(service.port, "/echo")
    raw.send(client_frame(0x1, b"\xff\xfe bad"))
    assert raw.close_code() == 1007
    raw.close()


def test_route_capacity_refuses_503_with_retry_after(service: Service) -> None:
    first, second = RawClient(service.port, "/tiny"), RawClient(service.port, "/tiny")
    try:
        assert (first.status, second.status) == (101, 101)
        status, headers, _ = http_get(
            service.url("/tiny"),
            {
                "Upgrade": "websocket",
                "Connection": "Upgrade",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert status == 503
        assert headers["Retry-After"] == "1"
    finally:
        first.close()
        second.close()


def test_plain_get_on_a_websocket_route_is_426_and_unknown_path_404(service: Service) -> None:
    status, headers, _ = http_get(service.url("/echo"))
    assert status == 426
    assert headers["Upgrade"] == "websocket"
    assert http_get(service.url("/nowhere"))[0] == 404


def test_fragmented_message_and_client_ping_from_raw_frames(service: Service) -> None:
    raw = RawClient(service.port, "/echo")
    raw.send(client_frame(0x1, b"frag", fin=False))
    raw.send(client_frame(0x9, b"ping-in-between"))
    raw.send(client_frame(0x0, b"mented", fin=True))
    frames = [raw.read_frame(), raw.read_frame()]
    assert (0xA, b"ping-in-between") in frames  # the pong carries the ping's payload
    assert (0x1, b"fragmented") in frames
    raw.send(client_frame(0x8, struct.pack("!H", 4001)))
    assert raw.close_code() == 4001  # a valid code is echoed
    raw.close()


def test_idle_connection_is_closed_1008(service: Service) -> None:
    raw = RawClient(service.port, "/lazy")
    assert raw.close_code() == 1008
    raw.close()


async def test_server_pings_carry_a_payload_and_rtt_is_measured(service: Service) -> None:
    def measured() -> float:
        return service.metrics().value("wsrelay_ping_rtt_seconds_count", route="/echo")

    before = measured()
    async with websockets.connect(service.ws_url("/echo")) as ws:
        # PING_INTERVAL is 0.2 s: pings come, websockets answers them, each pong is measured.
        deadline = time.monotonic() + 30  # a loaded machine is slow, not wrong
        while measured() - before < 2:
            assert time.monotonic() < deadline, "fewer than 2 ping round trips measured in 30 s"
            await asyncio.sleep(0.2)
        await ws.send("still here")
        assert await ws.recv() == "still here"


def test_a_silent_peer_is_dropped_after_ping_timeout_as_1006() -> None:
    with Service({"PING_INTERVAL": "0.2", "PING_TIMEOUT": "0.3"}) as service:
        raw = RawClient(service.port, "/echo")
        frames = list(raw.frames())  # never answers; the server gives up on it
        opcodes = [opcode for opcode, _ in frames]
        assert opcodes[0] == 0x9
        assert len(frames[0][1]) == 8
        assert frames[-1][0] == 0x8  # the attempted close frame
        assert struct.unpack("!H", frames[-1][1][:2])[0] == 1011
        metrics = service.metrics()
        assert metrics.value("wsrelay_ping_timeouts_total", route="/echo") == 1
        assert metrics.value("wsrelay_close_codes_total", route="/echo", code="1006") == 1


async def test_slow_consumer_is_closed_1008_and_the_room_is_not_delayed(service: Service) -> None:
    slow = RawClient(service.port, "/rooms/slow", rcvbuf=4096)  # never reads until the end
    fast = await websockets.connect(service.ws_url("/rooms/slow"), max_size=None)
    sender = await websockets.connect(service.ws_url("/rooms/slow"))
    payload = b"y" * 32768
    count = 120  # ~3.8 MiB for each receiver, far over SEND_QUEUE_BYTES (64 KiB)

    async def receive_all() -> int:
        got = 0
        while got < count:
            message = await fast.recv()
            assert message == payload
            got += 1
        return got

    reader = asyncio.create_task(receive_all())
    for _ in range(count):
        await sender.send(payload)
    assert await asyncio.wait_for(reader, 30) == count
    assert slow.close_code() == 1008
    slow.close()
    await fast.close()
    await sender.close()
    metrics = service.metrics()
    assert (
        metrics.value(
            "wsrelay_dropped_messages_total", route="/rooms/{room}", reason="slow_consumer"
        )
        >= 1
    )
    assert (
        metrics.value(
            "wsrelay_close_codes_total", route="/rooms/{room}", code="1008", initiator="server"
        )
        == 1
    )


async def test_metrics_count_known_traffic() -> None:
    with Service() as service:
        async with websockets.connect(service.ws_url("/echo")) as ws:
            for text in ("a", "bb", "ccc"):
                await ws.send(text)
                await ws.recv()
            await ws.send(b"\x00" * 10)
            await ws.recv()
            metrics = service.metrics()
            assert metrics.value("wsrelay_connections_active", route="/echo") == 1
        await asyncio.sleep(0.2)
        with pytest.raises(InvalidStatus):
            await websockets.connect(service.ws_url("/nowhere"))
        metrics = service.metrics()
    route = "/echo"
    assert metrics.value("wsrelay_messages_total", route=route, direction="in", type="text") == 3
    assert metrics.value("wsrelay_messages_total", route=route, direction="out", type="text") == 3
    assert metrics.value("wsrelay_messages_total", route=route, direction="in", type="binary") == 1
    assert metrics.value("wsrelay_message_bytes_total", route=route, direction="in") == 16
    assert metrics.value("wsrelay_message_bytes_total", route=route, direction="out") == 16
    assert metrics.value("wsrelay_connections_opened_total", route=route) == 1
    assert metrics.value("wsrelay_connections_active", route=route) == 0
    assert (
        metrics.value("wsrelay_close_codes_total", route=route, code="1000", initiator="client")
        == 1
    )
    assert metrics.value("wsrelay_handshakes_rejected_total", reason="not_found") == 1
    assert metrics.value("wsrelay_backplane_up") == 1
    assert metrics.total("wsrelay_build_info") == 1


async def test_sigterm_drains_with_the_configured_code_and_exits_0() -> None:
    service = Service(
        {
            "SHUTDOWN_CLOSE_CODE": "1012",
            "SHUTDOWN_DELAY": "1",
            "SHUTDOWN_SPREAD": "0.5",
            "SHUTDOWN_TIMEOUT": "5",
        }
    ).start()
    clients = [await websockets.connect(service.ws_url("/echo")) for _ in range(5)]
    service.signal(signal.SIGTERM)
    await asyncio.sleep(0.3)  # inside SHUTDOWN_DELAY: not ready, no new handshakes
    assert http_get(service.url("/readyz"))[0] == 503
    assert http_get(service.url("/healthz"))[0] == 200
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(service.ws_url("/echo"))
    assert refused.value.response.status_code == 503
    for ws in clients:
        await ws.wait_closed()
        assert ws.close_code == 1012
    assert await asyncio.to_thread(service.wait, 10) == 0
    events = [event.get("event") for event in service.log_events()]
    assert "drain" in events
    assert events.count("close") == 5


def test_a_port_in_use_is_one_line_and_exit_1() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = clean_env(WSRELAY_HOST="127.0.0.1", WSRELAY_PORT=str(port), WSRELAY_LOG_LEVEL="info")
        result = run_wsrelay("serve", env=env)
    assert result.returncode == 1
    assert f"wsrelay: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr
    # No traceback, and the pool's session was closed (aiohttp logs an error otherwise).
    assert "Traceback" not in result.stderr
    assert "Unclosed" not in result.stderr + result.stdout


def test_bad_settings_exit_2_naming_each_setting() -> None:
    env = clean_env(
        WSRELAY_PORT="eighty",
        WSRELAY_SHUTDOWN_CLOSE_CODE="1000",
        WSRELAY_ROUTES='[{"path": "echo", "mode": "echo"}]',
        WSRELAY_PROT="1",
    )
    result = run_wsrelay("serve", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert len(lines) == 4
    for name in (
        "WSRELAY_PORT",
        "WSRELAY_SHUTDOWN_CLOSE_CODE",
        "WSRELAY_ROUTES[0].path",
        "WSRELAY_PROT",
    ):
        assert any(line.startswith(f"wsrelay: {name}") for line in lines), (name, lines)


def test_check_config_prints_routes_and_exits_0_or_1() -> None:
    good = run_wsrelay("check-config", env=clean_env())
    assert good.returncode == 0
    assert "/echo  echo" in good.stdout
    assert "/rooms/{room}  broadcast" in good.stdout
    bad = run_wsrelay(
        "check-config", env=clean_env(WSRELAY_ROUTES='[{"path": "/p", "mode": "proxy"}]')
    )
    assert bad.returncode == 1
    assert "WSRELAY_ROUTES[0]" in bad.stderr
    assert "upstream" in bad.stderr
