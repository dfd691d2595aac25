"""The console's faults panel in real headless Chromium against `wsrelay serve` as a process.

The panel builds the handshake's query string from its fields and shows the URL; the "What
happened" list reports the handshake, the close code, whether a close frame came (the browser's
wasClean), how long the connection was open, the messages and the echo round trips.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Service
from tests.tools.test_console_browser import ConsolePage

pytestmark = pytest.mark.e2e


@pytest.fixture
def tab(chromium: Any, service: Service) -> Iterator[ConsolePage]:
    context = chromium.new_context(viewport={"width": 1280, "height": 1400})
    page = ConsolePage(context.new_page(), service)
    yield page
    context.close()
    assert page.errors == [], f"the console logged errors: {page.errors}"


def result(tab: ConsolePage, name: str) -> str:
    return str(tab.page.inner_text(f"#result-{name}"))


def test_the_fields_build_the_query_string_shown_in_the_url(tab: ConsolePage) -> None:
    page = tab.page
    page.select_option("#route", "/echo")
    page.fill("#fault-delay", "50ms")
    page.fill("#fault-close_reason", "bye now")
    page.check("#fault-no_pong")
    page.fill("#fault-seed", "7")
    preview = page.inner_text("#url-preview")
    assert preview.endswith("/echo?delay=50ms&close_reason=bye%20now&no_pong=true&seed=7")
    # The token comes first and stays masked; the stream fields belong to stream routes only.
    page.fill("#token", "secret")
    assert "/echo?token=••••&delay=50ms&" in page.inner_text("#url-preview")
    assert page.is_hidden("#stream-box")
    page.click("#faults-reset")
    assert page.inner_text("#url-preview").endswith("/echo?token=••••")


def test_a_malformed_value_is_named_and_nothing_connects(tab: ConsolePage) -> None:
    page = tab.page
    page.select_option("#route", "/echo")
    page.fill("#fault-delay", "fast")
    assert page.inner_text("#url-preview") == (
        '(delay: "fast" is not a duration such as 250ms, 2s or 1.5 (seconds))'
    )
    assert page.get_attribute("#fault-delay", "aria-invalid") == "true"
    page.click("#connect")
    assert tab.status().startswith('Fix the faults first: delay: "fast"')
    assert page.is_enabled("#connect")  # no connection was attempted
    page.fill("#fault-delay", "1.5")
    page.fill("#fault-drop", "2")
    assert 'drop: "2" is not a probability from 0 to 1' in page.inner_text("#url-preview")
    assert page.get_attribute("#fault-delay", "aria-invalid") is None


def test_what_happened_reports_open_messages_round_trips_and_a_clean_close(
    tab: ConsolePage, artifacts: Path
) -> None:
    page = tab.page
    tab.connect("/tiny")
    tab.wait_connected()
    assert result(tab, "open").startswith("after ")
    assert page.is_disabled("#fault-delay")  # locked while the connection is open
    tab.send("hi")
    page.wait_for_selector(".entry.in:has-text('hi')")
    page.wait_for_function("document.getElementById('result-rtt').textContent.startsWith('1: ')")
    assert result(tab, "messages") == "1 received, 1 sent"
    tab.send("more than ten bytes")  # the route's limit: the server closes with 1009
    page.wait_for_selector(".entry.event:has-text('code 1009')")
    assert result(tab, "close").startswith("1009 (message too big)")
    assert result(tab, "frame") == "yes, code 1009"
    # wasClean also needs a clean TCP end, which a server's close after a too-big message does
    # not always give Chromium: either answer is right here, and shown as it came.
    assert result(tab, "clean").startswith(("yes (wasClean", "no (wasClean false"))
    assert result(tab, "lasted").endswith(" s")
    assert result(tab, "stream") == "\u2013"  # a dash: echoes are no stream messages
    assert page.is_enabled("#fault-delay")
    page.screenshot(path=str(artifacts / "console-faults.png"), full_page=True)


def test_a_refused_handshake_is_reported_as_never_open_without_a_close_frame(
    tab: ConsolePage,
) -> None:
    tab.connect("/private")  # no token: the server answers 401, the browser sees 1006
    tab.page.wait_for_selector(".entry.event:has-text('code 1006')")
    assert result(tab, "open").startswith("never: refused")
    assert result(tab, "frame") == "none: the connection ended without one (1006)"
    assert result(tab, "clean").startswith("no (wasClean false")
    assert result(tab, "close").startswith("1006")
    assert all("/private" in e for e in tab.errors)  # Chromium logs the refusal itself
    tab.errors.clear()
