"""Fixtures for the tools' tests: the real service as a process, the `wsrelay` command, a browser.

The browser is Debian's Chromium driven by Playwright (never a downloaded browser); when either is
missing the browser tests skip with the reason, and `make test` installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, Service

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "console-test-token"
ROUTES = [
    {"path": "/echo", "mode": "echo"},
    {"path": "/rooms/{room}", "mode": "broadcast"},
    {"path": "/private", "mode": "echo", "auth": "token"},
    {"path": "/tiny", "mode": "echo", "max_message_bytes": 10},
    {"path": "/faults", "mode": "echo", "query_overrides": True},
    {"path": "/stream", "mode": "stream", "query_overrides": True},
]


@pytest.fixture(scope="module")
def service() -> Iterator[Service]:
    """wsrelay serve with an echo, a room, a token route, a tiny-limit route and the testing
    routes (faults from the query, a stream); fast pings."""
    env = {"ROUTES": ROUTES, "AUTH_TOKENS": TOKEN, "PING_INTERVAL": "0.5", "LOG_LEVEL": "warning"}
    with Service(env) as running:
        yield running


def wsrelay(
    *args: str, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """Runs the installed command (`python -m service ...`) to completion."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "120"},
    )


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium shared by a module's browser tests (sync Playwright, own loop)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (make test does, as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is missing: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
