"""The HTTP endpoints beside the WebSocket routes: /healthz, /readyz, /metrics, /routes."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import hdrs, web
from prometheus_client.aiohttp import make_aiohttp_handler

from .keys import METRICS, READINESS, SETTINGS


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    """Liveness: the process serves HTTP."""
    return _json({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 503 while draining or while a needed part (backplane, upstream) is down."""
    reasons = [reason for check in request.app[READINESS] if (reason := check()) is not None]
    if reasons:
        return _json({"status": "unavailable", "reasons": reasons}, status=503)
    return _json({"status": "ready"})


async def routes(request: web.Request) -> web.Response:
    """The effective routes, as the console and `check-config` show them."""
    settings = request.app[SETTINGS]
    return _json(
        [
            {
                "url_path": settings.path_prefix + route.path,
                **route.model_dump(exclude_defaults=True),
                "auth": route.auth,
            }
            for route in settings.routes
        ]
    )


async def count_unmatched_upgrades(request: web.Request, response: web.StreamResponse) -> None:
    """A WebSocket handshake to a path no route serves is a refusal (not_found) too.

    A response signal, not a middleware: middlewares would sit in every message's await chain.
    """
    if response.status == 404 and request.headers.get(hdrs.UPGRADE, "").lower() == "websocket":
        request.app[METRICS].unmatched.inc()


def add_endpoints(app: web.Application, prefix: str) -> None:
    """The endpoints; with METRICS_ENABLED=false /metrics is not served (404)."""
    app.router.add_get(prefix + "/healthz", healthz, allow_head=True)
    app.router.add_get(prefix + "/readyz", readyz, allow_head=True)
    app.router.add_get(prefix + "/routes", routes)
    if app[METRICS].enabled:
        app.router.add_get(prefix + "/metrics", make_aiohttp_handler(app[METRICS].registry))
        app.on_response_prepare.append(count_unmatched_upgrades)
