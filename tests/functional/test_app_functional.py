"""The app through aiohttp's test client: endpoints, prefix, readiness, caps, drain."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import WSServerHandshakeError, web
from aiohttp.test_utils import TestClient

from service import frames
from service.app import create_app, open_connections
from service.keys import BACKPLANE, DRAIN
from service.settings import Route, Settings

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


def settings(**overrides: object) -> Settings:
    return Settings.model_validate(overrides)


async def test_endpoints_under_the_path_prefix(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(settings(path_prefix="/relay")))
    for path in ("/relay/healthz", "/relay/readyz"):
        response = await client.get(path)
        assert response.status == 200
    routes = await (await client.get("/relay/routes")).json()
    assert routes == [
        {"url_path": "/relay/echo", "path": "/echo", "mode": "echo", "auth": "none"},
        {
            "url_path": "/relay/rooms/{room}",
            "path": "/rooms/{room}",
            "mode": "broadcast",
            "auth": "none",
        },
        *(
            {
                "url_path": f"/relay{path}",
                "path": path,
                "mode": mode,
                "query_overrides": True,
                "auth": "none",
            }
            for path, mode in (("/faults", "echo"), ("/stream", "stream"), ("/http", "http_echo"))
        ),
    ]
    assert (await client.get("/healthz")).status == 404
    ws = await client.ws_connect("/relay/echo")
    await ws.send_str("prefixed")
    assert await ws.receive_str() == "prefixed"
    await ws.close()


async def test_metrics_speak_prometheus_and_openmetrics(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(settings()))
    plain = await client.get("/metrics")
    assert plain.headers["Content-Type"].startswith("text/plain")
    assert "wsrelay_build_info" in await plain.text()
    open_metrics = await client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert open_metrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert (await open_metrics.text()).endswith("# EOF\n")


async def test_readiness_follows_drain_and_backplane(aiohttp_client: ClientFactory) -> None:
    app = create_app(settings())
    client = await aiohttp_client(app)
    app[BACKPLANE].up = False
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["reasons"] == ["backplane unreachable"]
    app[BACKPLANE].up = True
    app[DRAIN].draining = True
    assert (await client.get("/readyz")).status == 503
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/echo")
    assert refused.value.status == 503
    assert refused.value.headers is not None
    assert refused.value.headers["Retry-After"] == "1"


async def test_process_cap_counts_every_route(aiohttp_client: ClientFactory) -> None:
    app = create_app(settings(max_connections=2))
    client = await aiohttp_client(app)
    first = await client.ws_connect("/echo")
    second = await client.ws_connect("/rooms/a")
    with pytest.raises(WSServerHandshakeError) as refused:
        await client.ws_connect("/rooms/b")
    assert refused.value.status == 503
    assert len(open_connections(app)) == 2
    await first.close()
    await second.close()
    third = await client.ws_connect("/rooms/b")  # a slot came back
    await third.close()


async def test_drain_closes_every_connection_with_the_code(aiohttp_client: ClientFactory) -> None:
    app = create_app(settings(shutdown_timeout=3))
    client = await aiohttp_client(app)
    sockets = [await client.ws_connect(path) for path in ("/echo", "/rooms/a", "/rooms/a")]
    await app[DRAIN].run(lambda: open_connections(app), code=1012, delay=0, spread=0.2, timeout=3)
    for ws in sockets:
        message = await ws.receive()
        assert message.data == 1012
        await ws.close()
    assert open_connections(app) == []


def test_route_model_rejects_what_settings_reject() -> None:
    with pytest.raises(ValueError, match="room"):
        Route(path="/x/{room}", mode="echo")


async def test_with_metrics_off_echo_caps_drain_and_logs_still_work(
    aiohttp_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(
        settings(
            metrics_enabled=False,
            max_connections=2,
            shutdown_timeout=3,
            routes=[
                {"path": "/echo", "mode": "echo"},
                {"path": "/one", "mode": "echo", "max_connections": 1},
            ],
        )
    )
    client = await aiohttp_client(app)
    caplog.set_level("INFO", logger="wsrelay.connections")
    assert (await client.get("/metrics")).status == 404
    assert (await client.get("/healthz")).status == 200
    echo = await client.ws_connect("/echo")
    await echo.send_str("still echoed")
    assert await echo.receive_str() == "still echoed"
    one = await client.ws_connect("/one")
    for path in ("/one", "/echo"):  # the route's cap, then the process's
        with pytest.raises(WSServerHandshakeError) as refused:
            await client.ws_connect(path)
        assert refused.value.status == 503
        assert refused.value.headers is not None
        assert refused.value.headers["Retry-After"] == "1"
    assert len(open_connections(app)) == 2
    await one.close()
    one = await client.ws_connect("/one")  # a slot came back
    await app[DRAIN].run(lambda: open_connections(app), code=1012, delay=0, spread=0, timeout=3)
    for ws in (echo, one):
        assert (await ws.receive()).data == 1012
        await ws.close()
    assert open_connections(app) == []
    events = [(record.getMessage(), getattr(record, "route", None)) for record in caplog.records]
    assert events.count(("connect", "/one")) == 2
    assert events.count(("close", "/one")) == 2
    assert events.count(("close", "/echo")) == 1


async def test_frames_of_one_loop_pass_reach_each_member_once_without_its_own(
    aiohttp_client: ClientFactory,
) -> None:
    # Two senders' messages delivered in the same pass are written as one buffer per member:
    # each member gets what the others sent, in order, and never its own.
    app = create_app(settings())
    client = await aiohttp_client(app)
    members, server_side = [], []
    for _ in range(3):  # one at a time, to pair each client with its server-side WebSocket
        members.append(await client.ws_connect("/rooms/pass"))
        for _ in range(100):
            new = [ws for ws in open_connections(app) if ws not in server_side]
            if new:
                break
            await asyncio.sleep(0.01)
        server_side.extend(new)
    assert len(server_side) == 3
    backplane = app[BACKPLANE]
    room = "/rooms/{room}#pass"
    backplane.deliver(room, frames.OP_TEXT, b"0:first", server_side[0])
    backplane.deliver(room, frames.OP_TEXT, b"1:first", server_side[1])
    backplane.deliver(room, frames.OP_BINARY, b"0:second", server_side[0])
    expected: list[list[str | bytes]] = [
        ["1:first"],
        ["0:first", b"0:second"],
        ["0:first", "1:first", b"0:second"],
    ]
    for member, wanted in zip(members, expected, strict=True):
        got = [(await member.receive(timeout=5)).data for _ in wanted]
        assert got == wanted
    for member in members:
        await member.close()
