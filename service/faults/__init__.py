"""Faults a route injects on purpose, per connection, for testing WebSocket clients (SPEC.md).

The handshake middleware (`handshake.py`) works out a connection's effective `Faults` from the
route's `faults` and, with `query_overrides`, the query string, and leaves them on the request
under `FAULTS_KEY` with the route's counter under `FAULT_COUNTER`. A route with neither has no
such middleware and no key on its requests: its connections take the plain path.
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from .params import (
    FAULT_NAMES,
    FAULT_PARAMS,
    NO_FAULTS,
    FaultError,
    Faults,
    HttpEcho,
    Stream,
    faults_from_query,
    faults_from_settings,
    http_echo_from_query,
    parse_duration,
    stream_from_query,
    stream_from_settings,
)


class FaultCounter(Protocol):
    """Counts injected faults in wsrelay_faults_injected_total{route, fault} (RouteMetrics)."""

    def fault_injected(self, fault: str, count: int = 1) -> None: ...


#: The connection's effective faults, seed filled in (set only on routes that have faults).
FAULTS_KEY = web.RequestKey("wsrelay_faults", Faults)
#: Where the connection counts what it injected (set together with FAULTS_KEY).
FAULT_COUNTER = web.RequestKey[FaultCounter]("wsrelay_fault_counter")

__all__ = [
    "FAULTS_KEY",
    "FAULT_COUNTER",
    "FAULT_NAMES",
    "FAULT_PARAMS",
    "NO_FAULTS",
    "FaultCounter",
    "FaultError",
    "Faults",
    "HttpEcho",
    "Stream",
    "faults_from_query",
    "faults_from_settings",
    "http_echo_from_query",
    "parse_duration",
    "stream_from_query",
    "stream_from_settings",
]
