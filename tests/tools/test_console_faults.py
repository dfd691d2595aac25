"""The console's faults panel in real headless Chromium against `wsrelay serve` as a process.

The panel builds the handshake's query string from its fields and shows the URL; the "What
happened" list reports the handshake, the close code, whether a close frame came, the browser's
wasClean, how long the connection was open, the messages, the echo round trips and a stream's
seq/ts check. Each fault is observed the way the browser sees it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
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


def fill(tab: ConsolePage, route: str, **faults: str) -> None:
    tab.page.select_option("#route", route)
    for name, value in faults.items():
        tab.page.fill(f"#fault-{name}", value)


def wait_closed(tab: ConsolePage) -> None:
    tab.page.wait_for_selector(".entry.event:has-text('closed')")


def test_the_fields_build_the_query_string_shown_in_the_url(tab: ConsolePage) -> None:
    page = tab.page
    fill(tab, "/faults", delay="50ms", close_reason="bye now", seed="7")
    page.check("#fault-no_pong")
    preview = page.inner_text("#url-preview")
    assert preview.endswith("/faults?delay=50ms&close_reason=bye%20now&no_pong=true&seed=7")
    assert page.is_hidden("#stream-box")  # the stream's fields belong to stream routes
    page.select_option("#route", "/stream")
    page.fill("#fault-rate", "20")
    page.fill("#fault-count", "5")
    assert page.inner_text("#url-preview").endswith(
        "/stream?delay=50ms&close_reason=bye%20now&no_pong=true&seed=7&rate=20&count=5"
    )
    page.click("#faults-reset")
    assert page.inner_text("#url-preview").endswith("/stream")


def test_a_route_without_query_overrides_says_it_ignores_them(tab: ConsolePage) -> None:
    page = tab.page
    fill(tab, "/faults", delay="50ms")
    page.select_option("#route", "/echo")
    assert "/echo has no query_overrides" in page.inner_text("#faults-note")
    assert page.is_disabled("#fault-delay")
    assert page.inner_text("#url-preview").endswith("/echo")  # nothing the route would ignore


def test_a_malformed_value_is_named_and_nothing_connects(tab: ConsolePage) -> None:
    page = tab.page
    fill(tab, "/faults", delay="fast")
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


def test_a_handshake_delay_shows_in_the_time_to_open(tab: ConsolePage) -> None:
    fill(tab, "/faults", handshake_delay="500ms")
    tab.page.click("#connect")
    tab.wait_connected()
    opened = re.fullmatch(r"after ([\d.]+) ms", result(tab, "open"))
    assert opened, result(tab, "open")
    assert 500 <= float(opened[1]) < 15_000


def test_a_refused_handshake_is_never_open_and_has_no_close_frame(tab: ConsolePage) -> None:
    fill(tab, "/faults", reject="503")
    tab.page.click("#connect")
    wait_closed(tab)
    assert result(tab, "open").startswith("never: refused")
    assert result(tab, "frame") == "none: the connection ended without one (1006)"
    assert all("/faults" in e for e in tab.errors)  # Chromium logs the refusal itself
    tab.errors.clear()


def test_a_stream_is_checked_by_seq_and_ts(tab: ConsolePage) -> None:
    fill(tab, "/stream", rate="50", count="20")
    tab.page.click("#connect")
    wait_closed(tab)
    assert result(tab, "close") == "1000 (normal closure)"
    assert result(tab, "messages") == "20 received, 0 sent"
    assert result(tab, "stream").startswith(
        "seq 0-19: 0 missing, 0 out of order; one-way delay from ts (20: min "
    )
