"""Typed keys of the application state shared by the app, its routes and its endpoints."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from .backplane import Backplane
from .connections import OpenConnections
from .drain import Drain
from .metrics import Metrics
from .pool import ClientPool
from .settings import Settings

#: A readiness check returns why the process must not get new connections, or None.
ReadinessCheck = Callable[[], str | None]

SETTINGS = web.AppKey("settings", Settings)
METRICS = web.AppKey("metrics", Metrics)
BACKPLANE = web.AppKey("backplane", Backplane)
READINESS = web.AppKey("readiness", list[ReadinessCheck])
DRAIN = web.AppKey("drain", Drain)
POOL = web.AppKey("pool", ClientPool)
CONNECTIONS = web.AppKey("connections", OpenConnections)
