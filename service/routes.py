"""The configured routes (WSRELAY_ROUTES) as WebSocket routes of the app.

Each route gets its mode's handler behind its handshake middlewares, in this order: refusals
are counted, then draining (503), auth (401), origin (403) and capacity (503) are checked.
Options and label children are resolved here once per route, never per connection or frame.
"""

from __future__ import annotations

import logging
import socket
import time

from aiohttp import web

from .capacity import Slots, capacity_check
from .drain import Drain
from .keys import METRICS
from .metrics import RouteMetrics
from .middlewares import REJECT_REASON, Handler, Middleware, origin_check, token_auth
from .modes import MODES, RouteContext, WebSocketHandler
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
    route: Route, settings: Settings, metrics: RouteMetrics, drain: Drain, process: Slots
) -> list[Middleware]:
    middlewares = [count_rejections(metrics), drain.middleware()]
    if route.auth == "token":
        middlewares.append(token_auth(t.get_secret_value() for t in settings.auth_tokens))
    origins = settings.allowed_origins if route.allowed_origins is None else route.allowed_origins
    if origins:
        middlewares.append(origin_check(origins))
    route_slots = Slots(route.max_connections or settings.max_connections)
    middlewares.append(capacity_check(process, route_slots))
    return middlewares


def with_events(handler: WebSocketHandler, route: Route) -> WebSocketHandler:
    """Log connect and close (with code and duration) and send the greeting: per connection."""
    greeting = greeting_text(route)

    async def run(request: web.Request, ws: WebSocket) -> None:
        opened = time.monotonic()
        log.info(
            "connect",
            extra={
                "event": "connect",
                "route": route.path,
                "path": request.path,
                "peer": request.remote,
                "subprotocol": ws.subprotocol,
            },
        )

        def closed(_: object) -> None:
            log.info(
                "close",
                extra={
                    "event": "close",
                    "route": route.path,
                    "path": request.path,
                    "peer": request.remote,
                    "code": ws.close_code,
                    "initiator": "client" if ws.closed_by_peer else "server",
                    "duration": round(time.monotonic() - opened, 3),
                    "messages_in": ws.activity,
                },
            )

        ws.on_close.add_done_callback(closed)
        if greeting is not None:
            ws.send(greeting)
        await handler(request, ws)

    return run


def add_configured_routes(app: web.Application, settings: Settings, drain: Drain) -> None:
    """Register every route of `settings` on `app` under PATH_PREFIX."""
    table = RouteTable()
    process = Slots(settings.max_connections)
    for route in settings.routes:
        metrics = app[METRICS].route(route.path)
        handler = MODES[route.mode](RouteContext(route, settings, metrics, app))
        table.websocket(
            settings.path_prefix + route.path,
            options=route_options(route, settings),
            observer=metrics,
            middlewares=handshake_middlewares(route, settings, metrics, drain, process),
        )(with_events(handler, route))
    app.add_routes(table)
