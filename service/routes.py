"""The configured routes (WSRELAY_ROUTES) as WebSocket routes of the app.

Each route gets its mode's handler behind its handshake middlewares, in this order: refusals
are counted, then draining (503), auth (401), origin (403) and capacity (503) are checked.
Options and label children are resolved here once per route, never per connection or frame.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence

from aiohttp import web

from .capacity import Capacity, capacity_check
from .drain import Drain
from .faults import FAULT_NAMES, FAULTS_KEY
from .faults.handshake import fault_middleware
from .keys import CONNECTIONS, METRICS
from .metrics import RouteMetrics
from .middlewares import REJECT_REASON, Handler, Middleware, origin_check, token_auth
from .modes import MODES, RouteContext
from .modes.http_echo import http_echo
from .modes.stream import stream_check
from .routing import RouteTable
from .settings import Route, Settings
from .websocket import Options, WebSocket

log = logging.getLogger("wsrelay.connections")


def route_options(route: Route, settings: Settings) -> Options:
    """A route's limits: its own values where set, the global settings otherwise."""
    return Options(
        max_message_bytes=route.max_message_bytes or settings.max_message_bytes,
        send_queue_bytes=settings.send_queue_bytes,
        ping_interval=(
            settings.ping_interval if route.ping_interval is None else route.ping_interval
        ),
        ping_timeout=route.ping_timeout or settings.ping_timeout,
        idle_timeout=route.idle_timeout,
        protocols=tuple(route.subprotocols),
        compress=route.compress,
        greeting=greeting_text(route),
    )


def greeting_text(route: Route) -> str | None:
    """The route's greeting with `{hostname}` filled in: handy to see which replica answered."""
    if route.greeting is None:
        return None
    return route.greeting.replace("{hostname}", socket.gethostname())


def count_rejections(metrics: RouteMetrics) -> Middleware:
    """Count every refused handshake of the route by its reason."""

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as error:
            if error.status >= 400:
                metrics.rejected(request.get(REJECT_REASON, "bad_request"))
            raise

    return middleware


def handshake_middlewares(
    route: Route,
    settings: Settings,
    metrics: RouteMetrics,
    connections: set[WebSocket],
    drain: Drain,
    process: Capacity,
) -> list[Middleware]:
    middlewares = [count_rejections(metrics), drain.middleware()]
    if route.auth == "token":
        middlewares.append(token_auth(t.get_secret_value() for t in settings.auth_tokens))
    origins = settings.allowed_origins if route.allowed_origins is None else route.allowed_origins
    if origins:
        middlewares.append(origin_check(origins))
    route_cap = Capacity(route.max_connections or settings.max_connections, connections.__len__)
    middlewares.append(capacity_check(process, route_cap))
    if route.mode == "stream" and route.query_overrides:
        middlewares.append(stream_check(route.stream))
    # Last: a client refused for a real reason (auth, origin, capacity) still is, and a
    # handshake waiting out `handshake_delay` holds its place under the caps. A drain that
    # started meanwhile refuses it afterwards.
    faults = fault_middleware(route.faults, route.query_overrides, metrics)
    if faults is not None:
        metrics.count_faults(FAULT_NAMES if route.query_overrides else route.faults.enabled())
        middlewares += [faults, drain.middleware()]
    return middlewares


class LoggedRoute:
    """A route's observer: its open connections, its metrics, one log line at connect and close.

    The open connections are kept here, not in the metrics, because the capacity caps and the
    drain count them with METRICS_ENABLED=false too.
    """

    __slots__ = ("connections", "metrics", "route")

    def __init__(self, route: str, connections: set[WebSocket], metrics: RouteMetrics) -> None:
        self.route = route
        self.connections = connections
        self.metrics = metrics

    def observe_rtt(self, rtt: float) -> None:
        self.metrics.observe_rtt(rtt)

    def ping_timed_out(self) -> None:
        self.metrics.ping_timed_out()

    def dropped(self, reason: str, count: int = 1) -> None:
        self.metrics.dropped(reason, count)

    def opened(self, ws: WebSocket) -> None:
        self.connections.add(ws)
        self.metrics.opened(ws)
        if log.isEnabledFor(logging.INFO):  # the peer's address is kept once looked up
            log.info(
                "connect",
                extra={
                    "event": "connect",
                    **self._where(ws),
                    "subprotocol": ws.subprotocol,
                    **self._seed(ws),
                },
            )

    def closed(self, ws: WebSocket) -> None:
        self.connections.discard(ws)
        self.metrics.closed(ws)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "close",
                extra={
                    "event": "close",
                    **self._where(ws),
                    "code": ws.close_code,
                    "initiator": "client" if ws.closed_by_peer else "server",
                    "duration": round(ws.age, 3),
                    "messages_in": ws.activity,
                },
            )

    @staticmethod
    def _seed(ws: WebSocket) -> dict[str, int]:
        """The seed of a connection with faults: the run can be replayed with `seed=`."""
        faults = ws.request.get(FAULTS_KEY) if ws.request is not None else None
        return {} if faults is None or faults.seed is None else {"seed": faults.seed}

    def _where(self, ws: WebSocket) -> dict[str, str | None]:
        request = ws.request
        return {
            "route": self.route,
            # The path only: a query string may carry a token.
            "path": request.path if request is not None else None,
            "peer": request.remote if request is not None else None,
        }


def add_http_echo(
    table: RouteTable, path: str, route: Route, tokens: list[str], metrics: RouteMetrics
) -> None:
    """An http_echo route: every method, behind token auth if the route asks for it."""
    echo = http_echo(tokens, route.query_overrides, metrics)
    if route.query_overrides:
        metrics.count_faults(("delay",))
    if route.auth == "token":
        auth = token_auth(tokens)

        async def handler(request: web.Request) -> web.StreamResponse:
            return await auth(request, echo)

        table.route("*", path)(handler)
    else:
        table.route("*", path)(echo)


def add_configured_routes(
    app: web.Application, settings: Settings, drain: Drain, guards: Sequence[Middleware] = ()
) -> None:
    """Register every route of `settings` on `app` under PATH_PREFIX, `guards` first."""
    table = RouteTable()
    metrics = app[METRICS]
    open_connections = app[CONNECTIONS]
    process = Capacity(settings.max_connections, open_connections.count)
    tokens = [token.get_secret_value() for token in settings.auth_tokens]
    for route in settings.routes:
        connections = open_connections.route(route.path)
        route_metrics = metrics.route(route.path, connections)
        if route.mode == "http_echo":
            add_http_echo(table, settings.path_prefix + route.path, route, tokens, route_metrics)
            continue
        handler = MODES[route.mode](RouteContext(route, settings, route_metrics, app))
        table.websocket(
            settings.path_prefix + route.path,
            options=route_options(route, settings),
            observer=LoggedRoute(route.path, connections, route_metrics),
            middlewares=[
                *guards,
                *handshake_middlewares(route, settings, route_metrics, connections, drain, process),
            ],
        )(handler)
    app.add_routes(table)
