"""What one upstream reports: SPEC.md's wsrelay_upstream_* metrics, label children resolved once.

`UpstreamMetrics` is the `Observer` of every outbound connection to its upstream (ping RTT,
ping timeouts, close codes) and the pool calls it for connection states and failures. In
`wsrelay_upstream_close_codes_total`, `initiator` is `upstream` when the upstream started the
close (or vanished) and `wsrelay` when wsrelay did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Gauge

from . import closecodes
from .metrics import SilentObserver

if TYPE_CHECKING:
    from .metrics import Metrics
    from .websocket import WebSocket

#: States of `wsrelay_upstream_connections`.
STATES = ("idle", "active", "connecting")
#: Reasons of `wsrelay_upstream_failures_total`, a bounded set created up front:
#: timeout (no handshake within connect_timeout), refused (the upstream answered the handshake
#: with an HTTP error), unreachable (no TCP connection), tls (certificate or TLS failure),
#: lost (gone without a close frame), ping_timeout (no pong in time), slow_consumer (the
#: upstream did not read what wsrelay sent), pool_exhausted (no connection within
#: acquire_timeout).
FAILURE_REASONS = (
    "timeout",
    "refused",
    "unreachable",
    "tls",
    "lost",
    "ping_timeout",
    "slow_consumer",
    "pool_exhausted",
)


class UpstreamMetrics:
    """The metrics of one named upstream."""

    def __init__(self, metrics: Metrics, upstream: str) -> None:
        self.upstream = upstream
        self._metrics = metrics
        self.states = {
            state: metrics.upstream_connections.labels(upstream, state) for state in STATES
        }
        self.connect_seconds = metrics.upstream_connect_seconds.labels(upstream)
        self.rtt = metrics.upstream_ping_rtt.labels(upstream)
        self._failures = {
            reason: metrics.upstream_failures.labels(upstream, reason) for reason in FAILURE_REASONS
        }
        self._closes: dict[tuple[str, bool], Counter] = {}

    def state(self, name: str) -> Gauge:
        return self.states[name]

    def failed(self, reason: str) -> None:
        self._failures[reason].inc()

    def connected(self, seconds: float) -> None:
        """A connect succeeded after `seconds`."""
        self.connect_seconds.observe(seconds)

    # -- the WebSocket observer protocol -------------------------------------------------------
    def opened(self, ws: WebSocket) -> None:
        """States are the pool's business: a connection is counted as it moves between them."""

    def observe_rtt(self, rtt: float) -> None:
        self.rtt.observe(rtt)

    def ping_timed_out(self) -> None:
        self.failed("ping_timeout")

    def dropped(self, reason: str, count: int = 1) -> None:
        """The upstream stopped reading: wsrelay closed it as a slow consumer (1008)."""
        self._failures["slow_consumer"].inc(count)

    def closed(self, ws: WebSocket) -> None:
        """Count the close with its code and who started it; a vanished upstream is a failure."""
        by_upstream = ws.closed_by_peer
        if by_upstream and ws.close_code == closecodes.ABNORMAL:
            self.failed("lost")
        key = (self._metrics.code_label(ws.close_code), by_upstream)
        child = self._closes.get(key)
        if child is None:
            initiator = "upstream" if by_upstream else "wsrelay"
            child = self._closes[key] = self._metrics.upstream_close_codes.labels(
                self.upstream, key[0], initiator
            )
        child.inc()


class SilentUpstreamMetrics(SilentObserver, UpstreamMetrics):
    """An upstream's metrics with METRICS_ENABLED=false: connects, failures and closes ignored.

    The state gauges (`states`) still move as links open, change hands and close: they are
    plain float updates, and sparing them would thread a second kind of `Link` through the pool.
    """

    def failed(self, reason: str) -> None:
        pass

    def connected(self, seconds: float) -> None:
        pass
