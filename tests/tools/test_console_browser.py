"""The console in real headless Chromium against `wsrelay serve` as a process.

Each page records its console errors and uncaught exceptions; a test fails on any it did not
expect. Screenshots go to test-artifacts/ (git-ignored).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Service, http_get
from tests.tools.conftest import TOKEN

pytestmark = pytest.mark.e2e

WAIT_MS = 15_000
#: True once a row of the connections table (cells joined by tabs) matches the regex given.
ROW_SHOWN = """(pattern) => [...document.querySelectorAll('#connections-table tbody tr')]
  .some((row) => new RegExp(pattern).test(row.innerText.trim()))"""


class ConsolePage:
    """One browser tab on the console, with the errors it logged."""

    def __init__(self, page: Any, service: Service, path: str = "/") -> None:
        self.page = page
        self.errors: list[str] = []
        page.set_default_timeout(WAIT_MS)
        page.on("console", self._on_console)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.goto(service.url(path))
        page.wait_for_selector("#route option", state="attached")

    def _on_console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def connect(self, route: str, room: str | None = None, token: str | None = None) -> None:
        self.page.select_option("#route", route)
        if room is not None:
            self.page.fill("#param-room", room)
        if token is not None:
            self.page.fill("#token", token)
        self.page.click("#connect")

    def wait_connected(self) -> None:
        self.page.wait_for_selector("#message:enabled")

    def send(self, text: str, kind: str = "text") -> None:
        self.page.check(f"input[name=kind][value={kind}]")
        self.page.fill("#message", text)
        self.page.press("#message", "Enter")  # the keyboard path: Enter sends

    def received(self) -> list[str]:
        return [str(t) for t in self.page.locator(".entry.in").all_inner_texts()]

    def status(self) -> str:
        return str(self.page.inner_text("#status"))


@pytest.fixture
def open_console(chromium: Any, service: Service) -> Iterator[Any]:
    """Opens console tabs; after the test, fails if any tab logged an unexpected error."""
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    pages: list[ConsolePage] = []

    def opener() -> ConsolePage:
        pages.append(ConsolePage(context.new_page(), service))
        return pages[-1]

    yield opener
    context.close()
    errors = [e for p in pages for e in p.errors]
    assert not errors, f"the console logged errors: {errors}"


def test_echo_text_and_hex_then_close_shows_the_code(
    open_console: Any, service: Service, artifacts: Path
) -> None:
    tab = open_console()
    page = tab.page
    tab.connect("/echo")
    tab.wait_connected()
    assert "Connected to ws://127.0.0.1" in tab.status()
    assert page.evaluate("document.activeElement.id") == "message"  # focus moved to the message

    tab.send("hello wsrelay")
    page.wait_for_selector(".entry.in:has-text('hello wsrelay')")
    tab.send("01 02 ff", kind="hex")
    page.wait_for_selector(".entry.in:has-text('binary, 3 B')")
    received = tab.received()
    assert "text, 13 B" in received[0]
    assert "01 02 ff" in received[1]
    assert page.locator(".entry.out").count() == 2
    page.wait_for_function("document.getElementById('echo-rtt').textContent.includes('ms')")

    # The server's own view, from /metrics: this connection and its ping round trips.
    page.wait_for_function(ROW_SHOWN, arg=r"^/echo\s+1\s+\d+\s+2\s+2$")  # active 1, 2 in, 2 out
    page.wait_for_function("document.getElementById('ping-rtt').textContent.includes('mean of')")
    page.screenshot(path=str(artifacts / "console-echo.png"), full_page=True)

    page.fill("#close-code", "4001")
    page.click("#disconnect")
    page.wait_for_selector(".entry.event:has-text('code 4001')")
    assert "Closed: 4001 (private application code)" in tab.status()
    assert page.is_enabled("#connect")
    page.wait_for_selector("#closes-table td:text-is('4xxx')")
    page.screenshot(path=str(artifacts / "console-closed.png"), full_page=True)
    assert (
        service.metrics().value(
            "wsrelay_close_codes_total", route="/echo", code="4xxx", initiator="client"
        )
        == 1
    )


def test_a_room_message_reaches_the_other_page_only(open_console: Any, artifacts: Path) -> None:
    alice, bob = open_console(), open_console()
    for tab in (alice, bob):
        tab.connect("/rooms/{room}", room="browser-room")
        tab.wait_connected()
    alice.send("hi bob")
    bob.page.wait_for_selector(".entry.in:has-text('hi bob')")
    bob.page.screenshot(path=str(artifacts / "console-room.png"), full_page=True)
    bob.send("hi alice")
    alice.page.wait_for_selector(".entry.in:has-text('hi alice')")
    assert len(alice.received()) == 1  # a broadcast skips its sender
    assert len(bob.received()) == 1


def test_a_token_route_needs_the_token_in_the_query(open_console: Any) -> None:
    tab = open_console()
    tab.connect("/private")
    assert tab.page.inner_text("#token-need") == "(this route requires one)"
    tab.page.wait_for_selector(".entry.event:has-text('code 1006')")
    assert "handshake failed" in tab.status()
    # Chromium logs the refused handshake itself; that error is the expected one.
    assert tab.errors
    assert all(e.startswith("WebSocket connection to") and "/private" in e for e in tab.errors)
    tab.errors.clear()

    assert tab.page.input_value("#token") == ""
    tab.connect("/private", token=TOKEN)
    tab.wait_connected()
    assert "?token=••••" in tab.status()  # shown masked
    tab.send("secret hello")
    tab.page.wait_for_selector(".entry.in:has-text('secret hello')")


def test_bad_hex_is_refused_with_a_message_and_nothing_is_sent(open_console: Any) -> None:
    tab = open_console()
    tab.connect("/echo")
    tab.wait_connected()
    tab.send("0g", kind="hex")
    assert "Only hex digits" in tab.page.inner_text("#message-error")
    assert tab.page.get_attribute("#message", "aria-invalid") == "true"
    tab.send("abc", kind="hex")
    assert "two digits per byte" in tab.page.inner_text("#message-error")
    assert tab.page.locator(".entry.out").count() == 0


def test_the_console_works_under_a_path_prefix(chromium: Any) -> None:
    prefixed = Service({"PATH_PREFIX": "/relay", "LOG_LEVEL": "warning"}).start(wait=False)
    context = chromium.new_context()
    try:
        wait_for_ok(prefixed.url("/relay/healthz"))
        tab = ConsolePage(context.new_page(), prefixed, "/relay/")
        # The default routes; /http (http_echo) answers plain HTTP, not WebSockets: not listed.
        assert tab.page.locator("#route option").all_inner_texts() == [
            "/relay/echo (echo)",
            "/relay/rooms/{room} (broadcast)",
            "/relay/faults (echo)",
            "/relay/stream (stream)",
        ]
        tab.connect("/relay/echo")
        tab.wait_connected()
        tab.send("prefixed")
        tab.page.wait_for_selector(".entry.in:has-text('prefixed')")
        tab.page.wait_for_function(ROW_SHOWN, arg=r"^/echo\s+1\s+1\s+1\s+1$")
    finally:
        context.close()
        prefixed.stop()
    assert tab.errors == []


def wait_for_ok(url: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if http_get(url)[0] == 200:
                return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 200")


def test_a_close_by_the_server_shows_its_code(open_console: Any) -> None:
    tab = open_console()
    tab.connect("/tiny")
    tab.wait_connected()
    tab.send("more than ten bytes")
    tab.page.wait_for_selector(".entry.event:has-text('code 1009')")
    assert "Closed: 1009 (message too big)" in tab.status()
