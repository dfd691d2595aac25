"""The modes a configured route can have; each builds a WebSocket handler for its route."""

from __future__ import annotations

from collections.abc import Callable

from .broadcast import broadcast
from .context import RouteContext, WebSocketHandler
from .echo import echo
from .feed import feed
from .proxy import proxy
from .stream import stream

Mode = Callable[[RouteContext], WebSocketHandler]

#: The WebSocket modes; `http_echo` (plain HTTP) is routed by itself (service/routes.py).
MODES: dict[str, Mode] = {
    "echo": echo,
    "broadcast": broadcast,
    "proxy": proxy,
    "feed": feed,
    "stream": stream,
}

__all__ = ["MODES", "Mode", "RouteContext", "WebSocketHandler"]
