"""End to end: the SIGTERM drain fits in SHUTDOWN_TIMEOUT, and `wsrelay healthcheck` probes it.

SHUTDOWN_TIMEOUT bounds the whole drain, counted from the signal with the delay included; when
SHUTDOWN_DELAY + SHUTDOWN_SPREAD would run past it the spread is cut (service/drain.py).
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from tests.support import Service, clean_env, free_port, http_get, run_wsrelay

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


# -- wsrelay healthcheck ---------------------------------------------------------------------------
def healthcheck(env: Mapping[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m service healthcheck ARGS` with this environment: exit code and output."""
    return run_wsrelay("healthcheck", *args, env=env)


def test_healthcheck_passes_against_a_running_service_with_a_path_prefix() -> None:
    service = Service({"PATH_PREFIX": "/relay"}).start(wait=False)  # it waits on /healthz
    assert service.process is not None
    try:
        deadline = time.monotonic() + 15
        while (result := healthcheck(service.env)).returncode != 0:
            assert service.process.poll() is None, service.stderr
            assert time.monotonic() < deadline, result.stderr
            time.sleep(0.1)
        assert f"http://127.0.0.1:{service.port}/relay/healthz: 200" in result.stdout
        # A wrong prefix gets 404: the check does not pass on any answer, only on 200.
        wrong = healthcheck({**service.env, "WSRELAY_PATH_PREFIX": "/other"})
        assert wrong.returncode == 1
        assert "/other/healthz: 404" in wrong.stderr
    finally:
        assert service.stop() == 0


def test_healthcheck_fails_when_nothing_listens() -> None:
    env = clean_env(WSRELAY_PORT=str(free_port()))
    result = healthcheck(env, "--timeout", "1")
    assert result.returncode == 1
    assert "refused" in result.stderr.lower()


def test_healthcheck_reads_a_config_file_too(tmp_path: Path) -> None:
    with Service() as service:
        config = tmp_path / "wsrelay.yaml"
        config.write_text(f"host: 127.0.0.1\nport: {service.port}\n")
        env = clean_env(WSRELAY_CONFIG=str(config))
        assert healthcheck(env).returncode == 0
        # The file, not the default 8080, decides: a file naming a dead port fails.
        config.write_text(f"port: {free_port()}\n")
        assert healthcheck(env, "--timeout", "1").returncode == 1


async def test_healthcheck_ready_fails_while_draining_and_liveness_holds() -> None:
    with Service({"SHUTDOWN_DELAY": "3", "SHUTDOWN_TIMEOUT": "5"}) as service:
        assert (await asyncio.to_thread(healthcheck, service.env, "--ready")).returncode == 0
        service.signal(signal.SIGTERM)
        deadline = time.monotonic() + 2
        while http_get(service.url("/readyz"))[0] != 503:
            assert time.monotonic() < deadline, "/readyz never turned 503"
            await asyncio.sleep(0.05)
        ready = await asyncio.to_thread(healthcheck, service.env, "--ready")
        live = await asyncio.to_thread(healthcheck, service.env)
        assert ready.returncode == 1
        assert "/readyz: 503" in ready.stderr
        assert live.returncode == 0, live.stderr
        assert await asyncio.to_thread(service.wait, 10) == 0
