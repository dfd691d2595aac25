"""End to end: the SIGTERM drain fits in SHUTDOWN_TIMEOUT.

SHUTDOWN_TIMEOUT bounds the whole drain, counted from the signal with the delay included; when
SHUTDOWN_DELAY + SHUTDOWN_SPREAD would run past it the spread is cut (service/drain.py).
"""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support import Service

pytestmark = pytest.mark.e2e

#: What the process may take past SHUTDOWN_TIMEOUT to be gone (interpreter teardown).
EXIT_MARGIN = 0.5


async def closed_at(ws: ClientConnection, signalled: list[float]) -> float:
    """Seconds from the signal to this client's close."""
    await ws.wait_closed()
    return time.monotonic() - signalled[0]


async def test_delay_plus_spread_past_the_timeout_still_exits_0_within_it() -> None:
    delay, spread, timeout = 1.5, 3.5, 4.0  # each below the timeout, together past it
    settings = {
        "SHUTDOWN_DELAY": str(delay),
        "SHUTDOWN_SPREAD": str(spread),
        "SHUTDOWN_TIMEOUT": str(timeout),
    }
    with Service(settings) as service:
        clients = [await websockets.connect(service.ws_url("/echo")) for _ in range(12)]
        for ws in clients:  # every one is really served before the signal
            await ws.send("up?")
            assert await asyncio.wait_for(ws.recv(), 5) == "up?"
        signalled = [0.0]
        watchers = [asyncio.ensure_future(closed_at(ws, signalled)) for ws in clients]
        signalled[0] = time.monotonic()
        service.signal(signal.SIGTERM)
        code = await asyncio.to_thread(service.wait, timeout + 10)
        exited = time.monotonic() - signalled[0]
        times = sorted(await asyncio.wait_for(asyncio.gather(*watchers), 5))
    assert code == 0, service.stderr
    assert exited <= timeout + EXIT_MARGIN, f"exited {exited:.2f} s after SIGTERM"
    assert [ws.close_code for ws in clients] == [1001] * len(clients)
    assert times[0] >= delay - 0.1, f"first close {times[0]:.2f} s after SIGTERM, before the delay"
    # The spread is cut to fit, not dropped: the closes still come in batches over a while.
    assert times[-1] - times[0] >= 0.5, times
    assert "do not fit in SHUTDOWN_TIMEOUT" in service.stderr  # said at start, not silently
