"""Prometheus metrics; names and labels are SPEC.md's contract (dashboard, alerts, chart use them).

The hot path pays for nothing here: each connection counts messages and bytes in plain ints,
and `TrafficCollector` sums them when /metrics is scraped. Label children are resolved once per
route (or per close code), never per frame.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from . import __version__, closing
from .closecodes import CodeLabels

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from .websocket import WebSocket

#: Ping round trips from half a millisecond on loopback to ten seconds on a bad mobile link.
RTT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
CONNECT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
#: Refusal reasons of a route's handshakes (not_found has no route: see Metrics.unmatched).
REJECT_REASONS = ("auth", "origin", "capacity", "draining", "bad_request")
#: Why a route's messages may be dropped: each has a series from the start.
DROP_REASONS = ("slow_consumer", "backplane", "upstream_down")


class Traffic:
    """Message and byte counts; a connection keeps one, a route sums its closed connections."""

    __slots__ = ("bytes_in", "bytes_out", "in_binary", "in_text", "out_binary", "out_text")

    def __init__(self) -> None:
        self.in_text = self.in_binary = self.out_text = self.out_binary = 0
        self.bytes_in = self.bytes_out = 0

    def add(self, other: Traffic) -> None:
        self.in_text += other.in_text
        self.in_binary += other.in_binary
        self.out_text += other.out_text
        self.out_binary += other.out_binary
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out


class RouteMetrics:
    """Everything one route reports, with its label children resolved once.

    The route's observer (`routes.LoggedRoute`) calls it on open, pongs, drops and close; it
    reads the route's open connections (`live`) only to sum their traffic at scrape time.
    """

    def __init__(self, metrics: Metrics, route: str, live: Collection[WebSocket] = ()) -> None:
        self.route = route
        self._metrics = metrics
        self.live = live
        self.closed_traffic = Traffic()
        self.active = metrics.connections_active.labels(route)
        self.opened_total = metrics.connections_opened.labels(route)
        self.rtt = metrics.ping_rtt.labels(route)
        self.ping_timeouts = metrics.ping_timeouts.labels(route)
        self._rejected = {
            reason: metrics.handshakes_rejected.labels(route, reason) for reason in REJECT_REASONS
        }
        self._dropped: dict[str, Counter] = {
            reason: metrics.dropped_messages.labels(route, reason) for reason in DROP_REASONS
        }
        self._faults: dict[str, Counter] = {}
        self._closes: dict[tuple[str, bool], Counter] = {}

    def rejected(self, reason: str) -> None:
        self._rejected[reason].inc()

    def dropped(self, reason: str, count: int = 1) -> None:
        child = self._dropped.get(reason)
        if child is None:
            child = self._dropped[reason] = self._metrics.dropped_messages.labels(
                self.route, reason
            )
        child.inc(count)

    def count_faults(self, faults: Iterable[str]) -> None:
        """Create the route's wsrelay_faults_injected_total series for these faults at zero."""
        for fault in faults:
            if fault not in self._faults:
                self._faults[fault] = self._metrics.faults_injected.labels(self.route, fault)

    def fault_injected(self, fault: str, count: int = 1) -> None:
        """Count a fault injected on purpose (a `faults.FaultCounter`)."""
        child = self._faults.get(fault)
        if child is None:
            self.count_faults((fault,))
            child = self._faults[fault]
        child.inc(count)

    # -- the WebSocket observer protocol -------------------------------------------------------
    def opened(self, ws: WebSocket) -> None:
        self.opened_total.inc()
        self.active.inc()

    def observe_rtt(self, rtt: float) -> None:
        self.rtt.observe(rtt)

    def ping_timed_out(self) -> None:
        self.ping_timeouts.inc()

    def closed(self, ws: WebSocket) -> None:
        """Count the close once, with its code and who started it, and keep the traffic."""
        self.active.dec()
        self.closed_traffic.add(ws.traffic)
        key = (self._metrics.code_label(ws.close_code), ws.closed_by_peer)
        child = self._closes.get(key)
        if child is None:
            initiator = "client" if ws.closed_by_peer else "server"
            child = self._closes[key] = self._metrics.close_codes.labels(
                self.route, key[0], initiator
            )
        child.inc()

    def traffic(self) -> Traffic:
        """Closed connections' counts plus the live ones', as of now."""
        total = Traffic()
        total.add(self.closed_traffic)
        for ws in self.live:
            total.add(ws.traffic)
        return total


class SilentObserver:
    """Ignores every WebSocket observer event: mixed into metrics with METRICS_ENABLED=false."""

    def opened(self, ws: WebSocket) -> None:
        pass

    def observe_rtt(self, rtt: float) -> None:
        pass

    def ping_timed_out(self) -> None:
        pass

    def dropped(self, reason: str, count: int = 1) -> None:
        pass

    def closed(self, ws: WebSocket) -> None:
        pass


class SilentRouteMetrics(SilentObserver, RouteMetrics):
    """A route's metrics with METRICS_ENABLED=false: every event is ignored.

    A RouteMetrics, so modes and the backplane take it unchanged; its label children are
    made once at start in a registry nobody scrapes, and never touched afterwards.
    """

    def rejected(self, reason: str) -> None:
        pass

    def fault_injected(self, fault: str, count: int = 1) -> None:
        pass


class CloseCutsCollector(Collector):
    """Exports `closing.CUTS`: lingering closes cut because the peer kept sending."""

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "wsrelay_close_timeouts",
            "Closes cut at the close timeout: the peer kept sending after our close frame.",
            labels=("side",),
        )
        for side, count in closing.CUTS.items():
            family.add_metric((side,), count)
        yield family


class TrafficCollector(Collector):
    """Exports the per-connection counters as wsrelay_messages_total and _message_bytes_total."""

    def __init__(self, routes: Iterable[RouteMetrics]) -> None:
        self._routes = routes

    def collect(self) -> Iterator[Metric]:
        messages = CounterMetricFamily(
            "wsrelay_messages",
            "WebSocket messages by route, direction and type.",
            labels=("route", "direction", "type"),
        )
        sizes = CounterMetricFamily(
            "wsrelay_message_bytes",
            "WebSocket message payload bytes by route and direction.",
            labels=("route", "direction"),
        )
        for route in self._routes:
            t = route.traffic()
            name = route.route
            messages.add_metric((name, "in", "text"), t.in_text)
            messages.add_metric((name, "in", "binary"), t.in_binary)
            messages.add_metric((name, "out", "text"), t.out_text)
            messages.add_metric((name, "out", "binary"), t.out_binary)
            sizes.add_metric((name, "in"), t.bytes_in)
            sizes.add_metric((name, "out"), t.bytes_out)
        yield messages
        yield sizes


class Metrics:
    """The process's metrics, in a registry of their own so several apps can share a process."""

    def __init__(self, extra_close_codes: Iterable[int] = (), *, enabled: bool = True) -> None:
        # `_created` series double the exposition and no dashboard reads them.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        #: False (METRICS_ENABLED): /metrics is not served and routes count nothing.
        self.enabled = enabled
        self.registry = registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
        self.code_label = CodeLabels(extra_close_codes)
        self.routes: dict[str, RouteMetrics] = {}
        registry.register(TrafficCollector(self.routes.values()))
        registry.register(CloseCutsCollector())

        route = ("route",)
        self.connections_active = Gauge(
            "wsrelay_connections_active", "Open WebSocket connections.", route, registry=registry
        )
        self.connections_opened = Counter(
            "wsrelay_connections_opened",
            "WebSocket connections accepted.",
            route,
            registry=registry,
        )
        self.handshakes_rejected = Counter(
            "wsrelay_handshakes_rejected",
            "WebSocket handshakes refused, by reason.",
            ("route", "reason"),
            registry=registry,
        )
        self.close_codes = Counter(
            "wsrelay_close_codes",
            "Closed connections by close code and the side that started the close.",
            ("route", "code", "initiator"),
            registry=registry,
        )
        self.dropped_messages = Counter(
            "wsrelay_dropped_messages",
            "Messages not delivered: slow consumers, backplane outages.",
            ("route", "reason"),
            registry=registry,
        )
        self.ping_rtt = Histogram(
            "wsrelay_ping_rtt_seconds",
            "Round trip of the server's ping to the client's matching pong.",
            route,
            buckets=RTT_BUCKETS,
            registry=registry,
        )
        self.ping_timeouts = Counter(
            "wsrelay_ping_timeouts",
            "Connections dropped because no pong came within the ping timeout.",
            route,
            registry=registry,
        )
        self.faults_injected = Counter(
            "wsrelay_faults_injected",
            "Faults injected on purpose (routes with faults or query_overrides), by fault.",
            ("route", "fault"),
            registry=registry,
        )
        upstream = ("upstream",)
        self.upstream_connections = Gauge(
            "wsrelay_upstream_connections",
            "Outbound connections by upstream and state.",
            ("upstream", "state"),
            registry=registry,
        )
        self.upstream_connect_seconds = Histogram(
            "wsrelay_upstream_connect_seconds",
            "Time to open an upstream WebSocket connection.",
            upstream,
            buckets=CONNECT_BUCKETS,
            registry=registry,
        )
        self.upstream_failures = Counter(
            "wsrelay_upstream_failures",
            "Failed upstream connects and abnormal upstream losses, by reason.",
            ("upstream", "reason"),
            registry=registry,
        )
        self.upstream_close_codes = Counter(
            "wsrelay_upstream_close_codes",
            "Closed upstream connections by close code and initiator.",
            ("upstream", "code", "initiator"),
            registry=registry,
        )
        self.upstream_ping_rtt = Histogram(
            "wsrelay_upstream_ping_rtt_seconds",
            "Round trip of pings on upstream connections.",
            upstream,
            buckets=RTT_BUCKETS,
            registry=registry,
        )
        self.backplane_up = Gauge(
            "wsrelay_backplane_up",
            "1 while the backplane carries messages between replicas (always 1 for memory://).",
            registry=registry,
        )
        self.build_info = Gauge(
            "wsrelay_build_info", "Build of this process.", ("version",), registry=registry
        )
        self.build_info.labels(__version__).set(1)
        # Not found has no route template: count it under a fixed label.
        self.unmatched = self.handshakes_rejected.labels("unmatched", "not_found")

    def route(self, template: str, live: Collection[WebSocket] = ()) -> RouteMetrics:
        """The metrics of one route, every known label set created up front (no late series).

        `live` is the route's open connections, whose traffic a scrape adds up.
        """
        metrics = self.routes.get(template)
        if metrics is None:
            kind = RouteMetrics if self.enabled else SilentRouteMetrics
            metrics = self.routes[template] = kind(self, template, live)
        return metrics
