"""wsrelay: a WebSocket echo/relay service, and a WebSocket API that follows Vapor's docs.

The API's face, as the README presents it:

    from service import RouteTable, WebSocket, origin_check, token_auth

Its names are imported on first use, so `import service` stays cheap for the command line
and the image's health check (standard library only).
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("wsrelay")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from .middlewares import origin_check, token_auth
    from .routing import RouteGroup, RouteTable
    from .websocket import Options, WebSocket

#: Public name -> the module that defines it.
_API = {
    "WebSocket": "websocket",
    "Options": "websocket",
    "RouteTable": "routing",
    "RouteGroup": "routing",
    "token_auth": "middlewares",
    "origin_check": "middlewares",
}

__all__ = ["Options", "RouteGroup", "RouteTable", "WebSocket", "__version__"]
__all__ += ["origin_check", "token_auth"]


def __getattr__(name: str) -> Any:
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'service' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
