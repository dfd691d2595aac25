"""Open client connections by route: what the capacity caps and the shutdown drain count.

Kept apart from the metrics so that caps and drain work the same with METRICS_ENABLED=false.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .websocket import WebSocket


class OpenConnections:
    """Every open client connection of the process, one set per route template."""

    def __init__(self) -> None:
        self.routes: dict[str, set[WebSocket]] = {}

    def route(self, template: str) -> set[WebSocket]:
        """The open connections of one route: its observer adds and removes them."""
        return self.routes.setdefault(template, set())

    def count(self) -> int:
        return sum(len(route) for route in self.routes.values())

    def all(self) -> list[WebSocket]:
        return [ws for route in self.routes.values() for ws in route]
