"""wsrelay: a WebSocket echo/relay service, and a WebSocket API that follows Vapor's docs."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wsrelay")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
