"""An upstream URL may carry Basic-auth credentials (`wss://user:PASSWORD@host/`, which aiohttp
sends as an Authorization header): `check-config` shows it masked and the logs never hold it."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.support import clean_env, free_port, run_wsrelay

from .peers import relay

PASSWORD = "S3cret-upstream-pw"


def test_check_config_shows_an_upstream_url_with_its_password_masked() -> None:
    upstreams = {"up": {"url": f"wss://user:{PASSWORD}@example.invalid/feed"}}
    routes = [{"path": "/relay", "mode": "proxy", "upstream": "up"}]
    env = clean_env(WSRELAY_UPSTREAMS=json.dumps(upstreams), WSRELAY_ROUTES=json.dumps(routes))
    result = run_wsrelay("check-config", env=env)
    assert result.returncode == 0, result.stderr
    assert "\n  upstream up: wss://user:***@example.invalid/feed\n" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr


@pytest.mark.e2e
async def test_a_failing_upstream_with_credentials_leaves_no_password_in_the_logs() -> None:
    upstreams = {"refused": {"url": f"ws://user:{PASSWORD}@127.0.0.1:{free_port()}/x"}}
    routes = [{"path": "/refused", "mode": "proxy", "upstream": "refused"}]
    with relay(upstreams, routes, LOG_LEVEL="debug") as service:
        async with websockets.connect(service.ws_url("/refused")) as ws:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 20)
        assert ws.close_code == 1014
        events = service.log_events()
        assert any(event.get("upstream") == "refused" for event in events), events
        assert PASSWORD not in service.stderr + service.stdout
