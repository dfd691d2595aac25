"""METRICS_ENABLED end to end: off, wsrelay serves and caps as before, without /metrics."""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support import Service, clean_env, http_get, run_wsrelay

pytestmark = pytest.mark.e2e


async def echo_once(service: Service, path: str, text: str) -> None:
    async with websockets.connect(service.ws_url(path)) as ws:
        await ws.send(text)
        assert await ws.recv() == text


@pytest.mark.parametrize("enabled", [True, False])
async def test_echo_and_capacity_with_metrics_on_and_off(enabled: bool) -> None:
    with Service({"METRICS_ENABLED": str(enabled).lower(), "MAX_CONNECTIONS": "2"}) as service:
        assert http_get(service.url("/metrics"))[0] == (200 if enabled else 404)
        async with (
            websockets.connect(service.ws_url("/echo")) as first,
            websockets.connect(service.ws_url("/rooms/a")),
        ):
            await first.send("hello")
            assert await first.recv() == "hello"
            with pytest.raises(InvalidStatus) as refused:
                await websockets.connect(service.ws_url("/echo"))
            assert refused.value.response.status_code == 503
            assert refused.value.response.headers["Retry-After"] == "1"
        await asyncio.sleep(0.2)
        await echo_once(service, "/echo", "a slot came back")
        await asyncio.sleep(0.2)
        if enabled:
            metrics = service.metrics()
            assert metrics.value("wsrelay_connections_opened_total", route="/echo") == 2
            assert metrics.value("wsrelay_connections_active", route="/echo") == 0
            assert (
                metrics.value("wsrelay_handshakes_rejected_total", route="/echo", reason="capacity")
                == 1
            )
            assert (
                metrics.value("wsrelay_messages_total", route="/echo", direction="in", type="text")
                == 2
            )
        else:
            assert http_get(service.url("/metrics"))[0] == 404
        assert service.stop() == 0
    events = [event.get("event") for event in service.log_events()]
    assert events.count("connect") == 3
    assert events.count("close") == 3
    assert ("metrics" in service.stdout) is enabled  # the endpoints it printed at start


@pytest.mark.parametrize(
    ("value", "shown"), [("true", "  metrics: /metrics"), ("off", "  metrics: off")]
)
def test_check_config_shows_the_switch(value: str, shown: str) -> None:
    result = run_wsrelay("check-config", env=clean_env(WSRELAY_METRICS_ENABLED=value))
    assert result.returncode == 0
    assert shown in result.stdout.splitlines()


def test_a_bad_switch_stops_serve_with_exit_2() -> None:
    result = run_wsrelay("serve", env=clean_env(WSRELAY_METRICS_ENABLED="maybe"))
    assert result.returncode == 2
    assert result.stderr.startswith("wsrelay: WSRELAY_METRICS_ENABLED: ")
    assert "Traceback" not in result.stderr
