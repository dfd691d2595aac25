"""METRICS_ENABLED: off, route and upstream metrics ignore every event; on, counters move."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from service.metrics import Metrics, SilentRouteMetrics, Traffic
from service.upstream_metrics import SilentUpstreamMetrics, UpstreamMetrics


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the wsrelay_* families, by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in metrics.registry.collect()
        if family.name.startswith("wsrelay_")
        for sample in family.samples
    }


def closed_ws() -> Any:
    """What the observers read of a closed connection."""
    traffic = Traffic()
    traffic.in_text = traffic.out_text = 2
    return SimpleNamespace(close_code=1000, closed_by_peer=True, traffic=traffic)


def every_event(metrics: Metrics) -> None:
    """What a route and an upstream are told about over a connection's life, and refusals."""
    route = metrics.route("/echo")
    ws = closed_ws()
    route.rejected("capacity")
    route.opened(ws)
    route.observe_rtt(0.01)
    route.ping_timed_out()
    route.dropped("slow_consumer")
    route.closed(ws)
    kind = UpstreamMetrics if metrics.enabled else SilentUpstreamMetrics
    upstream = kind(metrics, "up")
    upstream.connected(0.01)
    upstream.failed("timeout")
    upstream.observe_rtt(0.01)
    upstream.ping_timed_out()
    upstream.dropped("slow_consumer")
    upstream.closed(ws)


@pytest.mark.parametrize("enabled", [True, False])
def test_events_move_the_counters_only_when_metrics_are_on(enabled: bool) -> None:
    metrics = Metrics(enabled=enabled)
    route = metrics.route("/echo")
    assert isinstance(route, SilentRouteMetrics) is not enabled
    SilentUpstreamMetrics(metrics, "up")  # label children exist before, as after, the events
    before = samples(metrics)
    every_event(metrics)
    changed = {key for key, value in samples(metrics).items() if before.get(key) != value}
    if enabled:
        names = {name for name, _ in changed}
        assert {
            "wsrelay_connections_opened_total",
            "wsrelay_close_codes_total",
            "wsrelay_handshakes_rejected_total",
            "wsrelay_ping_rtt_seconds_count",
            "wsrelay_ping_timeouts_total",
            "wsrelay_dropped_messages_total",
            "wsrelay_messages_total",
            "wsrelay_upstream_connect_seconds_count",
            "wsrelay_upstream_failures_total",
            "wsrelay_upstream_ping_rtt_seconds_count",
            "wsrelay_upstream_close_codes_total",
        } <= names
    else:
        assert changed == set()
