"""The aiohttp application: settings -> metrics, backplane, endpoints and configured routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from . import fdguard, ratelimit
from .backplane import create_backplane
from .connections import OpenConnections
from .console import add_console_routes
from .drain import Drain
from .endpoints import add_endpoints
from .keys import (
    BACKPLANE,
    CONNECTIONS,
    DRAIN,
    METRICS,
    POOL,
    READINESS,
    SETTINGS,
    ReadinessCheck,
)
from .metrics import Metrics
from .pool import ClientPool
from .routes import add_configured_routes
from .settings import Settings
from .websocket import WebSocket


def create_app(settings: Settings) -> web.Application:
    """Build the whole service from validated settings; nothing listens until it is run."""
    app = web.Application()
    metrics = Metrics(settings.close_code_labels, enabled=settings.metrics_enabled)
    backplane = create_backplane(settings.backplane_url, metrics)
    drain = Drain()
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[CONNECTIONS] = OpenConnections()
    app[BACKPLANE] = backplane
    app[DRAIN] = drain
    # Outbound connections of proxy and feed routes; required routes' upstreams gate /readyz.
    pool = app[POOL] = ClientPool(settings, metrics)
    checks: list[ReadinessCheck] = [
        drain.readiness,
        lambda: None if backplane.up else "backplane unreachable",
        pool.readiness,
    ]
    app[READINESS] = checks
    add_endpoints(app, settings.path_prefix)
    add_console_routes(app, settings.path_prefix)
    # Process-wide handshake guards, first in every route's chain (never around its messages).
    guards = [
        guard
        for guard in (
            ratelimit.guard(
                settings.handshake_rate, settings.handshake_burst, settings.path_prefix
            ),
            fdguard.guard(settings.path_prefix),
        )
        if guard is not None
    ]
    add_configured_routes(app, settings, drain, guards)
    app.cleanup_ctx.append(_backplane)
    app.cleanup_ctx.append(pool.lifecycle)  # after the backplane: closed before it
    return app


async def _backplane(app: web.Application) -> AsyncIterator[None]:
    backplane = app[BACKPLANE]
    await backplane.start()
    yield
    await backplane.close()


def open_connections(app: web.Application) -> list[WebSocket]:
    """Every open client connection of every configured route."""
    return app[CONNECTIONS].all()
