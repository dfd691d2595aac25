"""What a mode is given to build its handler: the route, the settings and the app's parts."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from ..backplane import Backplane
from ..keys import BACKPLANE
from ..metrics import RouteMetrics
from ..routing import WebSocketHandler
from ..settings import Route, Settings


@dataclass(frozen=True, slots=True)
class RouteContext:
    route: Route
    settings: Settings
    metrics: RouteMetrics
    app: web.Application

    @property
    def backplane(self) -> Backplane:
        return self.app[BACKPLANE]


__all__ = ["RouteContext", "WebSocketHandler"]
