"""Shared command line for the Python peer servers: where to listen, which event loop."""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Coroutine
from typing import Any


def parse_args(description: str) -> argparse.Namespace:
    """Every peer takes the same flags, so the harness starts them all alike."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--loop", choices=("uvloop", "asyncio"), default="uvloop", help="event loop to run on"
    )
    return parser.parse_args()


def run(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run `main` until it returns or the process gets SIGTERM/SIGINT."""
    if loop == "uvloop":
        import uvloop

        uvloop.run(main)
    else:
        asyncio.run(main)


async def wait_for_signal() -> None:
    """Return on SIGTERM/SIGINT: the harness ends a peer that way, and the sockets die with it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
