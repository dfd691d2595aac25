"""Issue 13's frictions met as a newcomer: the package's face exports the seed's API as the
README presents it (the README's sample runs here exactly as written), and
`wsrelay_dropped_messages_total` has its series from the start. The third, wheels for the image
chosen without WHEELS_PYTHON, is tested where the image is built (tests/deploy/)."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestServer

from tests.support import ROOT, Service


def readme_api_sample() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The WebSocket API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match is not None, "README: no python sample under 'The WebSocket API'"
    return match.group(1)


def test_the_package_exports_the_seed_api() -> None:
    import service
    from service import Options, RouteGroup, RouteTable, WebSocket, origin_check, token_auth
    from service.middlewares import origin_check as origin_check_
    from service.routing import RouteTable as RouteTable_
    from service.websocket import WebSocket as WebSocket_

    assert (WebSocket, RouteTable, origin_check) == (WebSocket_, RouteTable_, origin_check_)
    assert callable(token_auth)
    assert Options().max_message_bytes == 1_048_576
    assert RouteGroup.__name__ == "RouteGroup"
    assert set(service.__all__) >= {"WebSocket", "RouteTable", "token_auth", "origin_check"}


def test_importing_the_package_stays_cheap() -> None:
    """`wsrelay healthcheck` (the image's HEALTHCHECK) must not pay for aiohttp."""
    code = "import sys, service; print('aiohttp' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )
    assert out.stdout.strip() == "False"


async def test_the_readme_sample_runs_as_written() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(readme_api_sample(), "README.md", "exec"), namespace)
    server = TestServer(namespace["app"], host="127.0.0.1")
    await server.start_server()
    try:
        url = f"ws://127.0.0.1:{server.port}"
        async with websockets.connect(f"{url}/echo") as echo:
            await echo.send("hello")
            assert await echo.recv() == "hello"
            await echo.send(b"\x01\x02")
            assert await echo.recv() == b"\x01\x02"
        headers = {"Authorization": "Bearer s3cret"}
        async with websockets.connect(
            f"{url}/api/chat",
            additional_headers=headers,
            origin=websockets.Origin("https://app.example.com"),
        ) as chat:
            await chat.send("hi")
            assert await chat.recv() == "hi"
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(f"{url}/api/chat")
        assert refused.value.response.status_code == 401
    finally:
        await server.close()


def test_dropped_messages_have_a_series_per_reason_before_any_drop() -> None:
    """The dashboard's drops panel shows 0 on a healthy service, not "No data" (issue 13)."""
    routes = [{"path": "/echo", "mode": "echo"}, {"path": "/rooms/{room}", "mode": "broadcast"}]
    with Service({"ROUTES": routes}) as service:
        metrics = service.metrics()
    series = {
        (sample.labels["route"], sample.labels["reason"]): sample.value
        for family in metrics.families.values()
        for sample in family.samples
        if sample.name == "wsrelay_dropped_messages_total"
    }
    assert series == {
        (route, reason): 0.0
        for route in ("/echo", "/rooms/{room}")
        for reason in ("slow_consumer", "backplane", "upstream_down")
    }
