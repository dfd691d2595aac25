"""The console's faults panel in real headless Chromium against `wsrelay serve` as a process.

The panel builds the handshake's query string from its fields and shows the URL; the "What
happened" list reports the handshake, the close code, whether a close frame came, the browser's
wasClean, how long the connection was open, the messages, the echo round trips and a stream's
seq/ts check. Each fault is observed the way the browser sees it.
"""

from __future__ import annotations

import re
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


def rtt_min_ms(tab: ConsolePage) -> float:
    match = re.search(r"min ([\d.]+) ms", result(tab, "rtt"))
    assert match, result(tab, "rtt")
    return float(match[1])


def test_delay_shows_in_the_round_trips(tab: ConsolePage, artifacts: Path) -> None:
    page = tab.page
    fill(tab, "/faults", delay="300ms")
    page.click("#connect")
    tab.wait_connected()
    assert page.is_disabled("#fault-delay")  # locked while the connection is open
    for text in ("one", "two"):
        tab.send(text)
        page.wait_for_selector(f".entry.in:has-text('{text}')")
    page.wait_for_function("document.getElementById('result-rtt').textContent.startsWith('2: ')")
    assert 300 <= rtt_min_ms(tab) < 10_000  # the delay, at least; a wide upper bound
    assert result(tab, "messages") == "2 received, 2 sent"
    page.screenshot(path=str(artifacts / "console-faults.png"), full_page=True)
    page.fill("#close-code", "4000")
    page.click("#disconnect")
    wait_closed(tab)
    assert result(tab, "close") == "4000 (private application code)"
    assert float(result(tab, "lasted").removesuffix(" s")) >= 0.6
    assert page.is_enabled("#fault-delay")


def test_a_chosen_close_code_and_reason_come_with_a_close_frame(tab: ConsolePage) -> None:
    page = tab.page
    fill(tab, "/faults", close_after="2", close_code="4001", close_reason="bye")
    page.click("#connect")
    tab.wait_connected()
    tab.send("one")
    page.wait_for_selector(".entry.in:has-text('one')")
    tab.send("two")
    wait_closed(tab)
    assert result(tab, "close") == '4001 (private application code), reason "bye"'
    assert result(tab, "frame") == "yes, code 4001"
    assert result(tab, "clean").startswith("yes (wasClean")
    assert result(tab, "messages") == "2 received, 2 sent"


def test_an_abort_is_a_1006_without_a_close_frame(tab: ConsolePage) -> None:
    fill(tab, "/faults", abort_after="1")
    tab.page.click("#connect")
    tab.wait_connected()
    tab.send("last words")
    wait_closed(tab)
    assert result(tab, "close").startswith("1006 (abnormal closure")
    assert result(tab, "frame") == "none: the connection ended without one (1006)"
    assert result(tab, "clean").startswith("no (wasClean false")
    assert result(tab, "open").startswith("after ")  # it did open: not a refusal
    tab.errors.clear()  # Chromium may log the dropped connection itself


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
    fill(tab, "/stream", rate="50", count="20", drop="0.2", seed="3")
    tab.page.click("#connect")
    wait_closed(tab)
    assert result(tab, "close") == "1000 (normal closure)"
    stream = result(tab, "stream")
    received = int(result(tab, "messages").split()[0])
    match = re.match(r"seq 0-(\d+): (\d+) missing, 0 out of order; one-way delay from ts", stream)
    assert match, stream
    highest, missing = int(match[1]), int(match[2])
    assert received == highest + 1 - missing  # every arrival accounted for
    assert 0 < received < 20  # a fifth dropped, seeded: some, never all
