"""Every metric the dashboard and the alert rules query is exported by the real service.

wsrelay runs as a process (tests.support.Service); after some traffic (echo, a broadcast room,
refused handshakes, closes, pings) its /metrics is parsed with prometheus_client's parser. A
family exported with HELP/TYPE counts as present even with no sample yet: the names are the
contract (SPEC.md), the samples come with traffic the dashboard will see in production.
"""

from __future__ import annotations

import asyncio

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support import Metrics, Service

from .tools import alert_expressions, dashboard_targets, family_of, metric_names

pytestmark = pytest.mark.e2e

#: Families that only a later issue makes the service export (upstream pool: issue 3, Redis
#: backplane: issue 4). Missing ones among these are reported as an expected failure naming
#: them, never passed silently; any other missing name fails.
EXPECTED_LATER = {
    "wsrelay_upstream_connections": "issue 3 (upstream pool)",
    "wsrelay_upstream_connect_seconds": "issue 3 (upstream pool)",
    "wsrelay_upstream_failures_total": "issue 3 (upstream pool)",
    "wsrelay_upstream_close_codes_total": "issue 3 (upstream pool)",
    "wsrelay_upstream_ping_rtt_seconds": "issue 3 (upstream pool)",
    "wsrelay_backplane_up": "issue 4 (Redis backplane)",
}


async def make_traffic(service: Service) -> None:
    """Echo text and binary, a two-client room, refused handshakes, pings, closes."""
    async with websockets.connect(service.ws_url("/echo")) as echo:
        await echo.send("hello")
        assert await echo.recv() == "hello"
        await echo.send(b"\x00\x01")
        assert await echo.recv() == b"\x00\x01"
        await asyncio.sleep(0.5)  # a few server pings (PING_INTERVAL below) and their pongs
    async with (
        websockets.connect(service.ws_url("/rooms/lobby")) as alice,
        websockets.connect(service.ws_url("/rooms/lobby")) as bob,
    ):
        await alice.send("hi bob")
        assert await asyncio.wait_for(bob.recv(), 5) == "hi bob"
        await bob.close(code=4000)
    with pytest.raises(InvalidStatus):
        await websockets.connect(service.ws_url("/nowhere"))


def exported(metrics: Metrics) -> set[str]:
    """Series names the scrape exposes, and the names of families declared by HELP/TYPE."""
    names = set()
    for family in metrics.families.values():
        names.add(family.name)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(f"{family.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        names.update(sample.name for sample in family.samples)
    return names


async def test_dashboard_and_alert_metrics_are_exported_after_traffic() -> None:
    used = metric_names(dashboard_targets()) | metric_names(alert_expressions())
    with Service({"PING_INTERVAL": "0.1", "PING_TIMEOUT": "5"}) as service:
        await make_traffic(service)
        metrics = service.metrics()
    present = exported(metrics)
    missing = {name for name in used if name not in present}
    later = {name for name in missing if family_of(name) in EXPECTED_LATER}
    assert missing == later, f"used by the dashboard or alerts, not exported: {sorted(missing)}"
    # The traffic really happened: the scrape is no empty shell.
    assert metrics.total("wsrelay_connections_opened_total") >= 3
    assert metrics.value("wsrelay_messages_total", route="/echo", direction="in", type="text") >= 1
    assert metrics.total("wsrelay_ping_rtt_seconds_count") >= 1
    assert metrics.total("wsrelay_handshakes_rejected_total", reason="not_found") >= 1
    if later:
        pytest.xfail(
            "exported only once later issues land: "
            + ", ".join(f"{name} ({EXPECTED_LATER[family_of(name)]})" for name in sorted(later))
        )
