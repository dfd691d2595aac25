"""`wsrelay serve`: run the app on uvloop until SIGTERM/SIGINT, then drain and exit 0."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from aiohttp import web

from . import httplimits, tls
from .app import create_app, open_connections
from .drain import CLEANUP_MARGIN
from .keys import DRAIN
from .settings import Settings

log = logging.getLogger("wsrelay.server")


class ListenError(Exception):
    """The listening socket could not be opened: one line for the operator, no traceback."""


def urls(settings: Settings, port: int) -> list[str]:
    """What `make run` prints: the WebSocket URLs and endpoints this process serves."""
    host = "localhost" if settings.host in ("0.0.0.0", "::", "") else settings.host
    base = f"{host}:{port}{settings.path_prefix}"
    secure = "s" if settings.tls_cert_file else ""
    lines = [
        f"{'http' if route.mode == 'http_echo' else 'ws'}{secure}://{base}{route.path}"
        f"  ({route.mode})"
        for route in settings.routes
    ]
    endpoints = ["healthz", "readyz", "routes"]
    if settings.metrics_enabled:
        endpoints.insert(2, "metrics")
    lines += [f"http{secure}://{base}/{name}" for name in endpoints]
    return lines


async def serve(settings: Settings) -> None:
    """Serve until a stop signal, then drain as SHUTDOWN_* say."""
    app = create_app(settings)
    httplimits.quiet_peer_errors()
    limits = httplimits.handler_limits(
        settings.max_request_line_bytes,
        settings.max_header_bytes,
        settings.max_headers,
        settings.handshake_timeout,
    )
    runner = web.AppRunner(
        app, handle_signals=False, access_log=None, shutdown_timeout=CLEANUP_MARGIN, **limits
    )
    await runner.setup()
    ssl_context = tls.serving_context(settings.tls_cert_file, settings.tls_key_file)
    site = web.TCPSite(runner, settings.host, settings.port, backlog=1024, ssl_context=ssl_context)
    try:
        await site.start()
    except OSError as error:  # the port is taken, the address is not ours, ...
        await runner.cleanup()  # the pool and the backplane stop cleanly too
        reason = error.strerror or str(error)
        raise ListenError(f"cannot listen on {settings.host}:{settings.port}: {reason}") from None
    port = runner.addresses[0][1] if runner.addresses else settings.port
    print("wsrelay serving:", *urls(settings, port), sep="\n  ", flush=True)
    log.info("listening", extra={"event": "listening", "host": settings.host, "port": port})

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stop signal", extra={"event": "stopping"})
    await app[DRAIN].run(
        lambda: open_connections(app),
        code=settings.shutdown_close_code,
        delay=settings.shutdown_delay,
        spread=settings.shutdown_spread,
        timeout=settings.shutdown_timeout,
    )
    await runner.cleanup()


def run(settings: Settings) -> None:
    """Run `serve` on uvloop when it is installed (it is a dependency on Linux)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - non-Linux platforms
        asyncio.run(serve(settings))
        return
    if sys.version_info >= (3, 12):
        uvloop.run(serve(settings))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(settings))
