"""No leaks under churn: thousands of connections come and go, some abruptly, and the server
returns to its idle state: the same open file descriptors, no connection in the gauges, and
resident memory within a stated bound.

wsrelay exposes no asyncio task count; a task left behind per connection would hold its socket,
so the file-descriptor count and the connection gauges are what catch it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from service.modes import MODES
from tests.churn.churn import Snapshot, run_cycles, settle
from tests.churn.observe import tracebacks
from tests.support import Service

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

CYCLES = 2000
WARMUP_CYCLES = 2000
#: Resident memory may grow this much over the measured cycles after the warm-up (seen: about
#: 3 MiB on echo); a leak of 4 KiB per connection would cross it.
RSS_BOUND = 8 * 1024 * 1024
#: The keepalive scheduler lets go of a closed connection at its next deadline, so a closed
#: connection's memory is held up to one ping interval: a short one keeps the test short.
PING_INTERVAL = 1.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[Service]:
    with Service({"ROUTES": [{"path": "/echo", "mode": "echo"}]}) as running:
        yield running


def mode_settings(mode: str, upstream: Service) -> tuple[dict[str, Any], list[str]]:
    """The service's settings and the paths churned for one mode."""
    if mode == "echo":
        return {"ROUTES": [{"path": "/echo", "mode": "echo"}]}, ["/echo"]
    if mode == "broadcast":
        route = {"path": "/rooms/{room}", "mode": "broadcast", "echo_to_sender": True}
        return {"ROUTES": [route]}, [f"/rooms/churn-{n}" for n in range(5)]
    if mode not in MODES:
        pytest.skip(f"{mode} mode is not implemented yet (service.modes.MODES: {sorted(MODES)})")
    url = upstream.ws_url("/echo")
    if mode == "feed":
        # Forwarded to the echo upstream, whose answer the feed sends to every client. One
        # shared upstream connection, no upstream churn: its keepalive stays the default.
        route = {"path": "/feed", "mode": "feed", "upstream": "echo", "forward": True}
        return {"ROUTES": [route], "UPSTREAMS": {"echo": {"url": url}}}, ["/feed"]
    route = {"path": "/relay", "mode": "proxy", "upstream": "echo"}
    upstreams = {"echo": {"url": url, "ping_interval": PING_INTERVAL}}
    return {"ROUTES": [route], "UPSTREAMS": upstreams}, ["/relay"]


@pytest.mark.parametrize(
    "mode",
    [
        "echo",
        "broadcast",
        "proxy",
        "feed",
    ],
)
def test_churn_returns_the_server_to_idle(mode: str, upstream: Service) -> None:
    settings, paths = mode_settings(mode, upstream)
    keepalive = {"PING_INTERVAL": str(PING_INTERVAL), "PING_TIMEOUT": "10"}
    with Service({**settings, **keepalive, "LOG_LEVEL": "warning"}) as service:
        warmup = asyncio.run(run_cycles(service, paths, WARMUP_CYCLES, seed=1))
        assert not warmup.errors, warmup.errors
        time.sleep(2 * PING_INTERVAL)
        idle = asyncio.run(settle(service, Snapshot(fds=10**6, rss=0, active=0)))
        assert idle.active == 0

        stats = asyncio.run(run_cycles(service, paths, CYCLES, seed=2))
        time.sleep(2 * PING_INTERVAL)
        after = asyncio.run(settle(service, idle))

        assert not stats.errors, stats.errors
        assert stats.cycles == CYCLES
        assert set(stats.endings) == {"clean", "abrupt", "mid_message", "mid_handshake"}
        assert after.active == 0, "connections still counted as active"
        assert after.fds <= idle.fds, f"{after.fds - idle.fds} file descriptors leaked"
        growth = after.rss - idle.rss
        assert growth < RSS_BOUND, f"RSS grew by {growth / 2**20:.1f} MiB over {CYCLES} cycles"
        opened = service.metrics().total("wsrelay_connections_opened_total")
        assert opened >= (WARMUP_CYCLES + CYCLES) * 0.7  # all but the mid-handshake drops
        assert service.process is not None
        assert service.process.poll() is None
        assert not tracebacks(service.stderr), service.stderr
