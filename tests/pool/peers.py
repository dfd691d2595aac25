"""The pool tests' peers: a `websockets` upstream in its own process, and polling helpers."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support import ROOT, Service, free_port, http_get


class UpstreamProcess:
    """tests/pool/upstream_server.py on a fixed loopback port: start, kill, start again."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> UpstreamProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.pool.upstream_server", str(self.port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # "ready" once listening (or EOF if it died)
        if line.strip() != "ready":
            raise RuntimeError(f"the upstream did not start: {line!r}")
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: its connections end without a close frame."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: its sockets stay open but nothing answers, not even pings."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def __enter__(self) -> UpstreamProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.kill()

    def url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def stats(self) -> dict[str, Any]:
        status, _, body = http_get(f"http://127.0.0.1:{self.port}/stats")
        assert status == 200
        result: dict[str, Any] = json.loads(body)
        return result

    def release(self) -> None:
        """Let /sink connections start reading."""
        assert http_get(f"http://127.0.0.1:{self.port}/release")[0] == 200


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], what: str, timeout: float = 15.0
) -> None:
    """Poll `check` until it holds; fail naming `what` if it never does (a bound, not a speed)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.05)


async def settled(read: Callable[[], int], quiet: float = 0.5, timeout: float = 20.0) -> int:
    """Poll `read` until its value has not changed for `quiet` seconds; return that value."""
    deadline = time.monotonic() + timeout
    value = read()
    since = time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    raise AssertionError(f"kept changing for {timeout}s (last value {value})")


def relay(
    upstreams: dict[str, dict[str, Any]], routes: list[dict[str, Any]], **env: Any
) -> Service:
    """wsrelay with these upstreams and routes (not started)."""
    return Service({"UPSTREAMS": upstreams, "ROUTES": routes, **env})
