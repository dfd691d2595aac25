"""`wsrelay bench` against the testing routes of a real `wsrelay serve`: what it reports about a
stream (loss, order, one-way delay) and about injected faults agrees with the server's own
counters (wsrelay_messages_total, wsrelay_faults_injected_total)."""

from __future__ import annotations

import pytest

from tests.support import Service
from tests.tools.conftest import wsrelay
from tests.tools.test_bench_e2e import bench, delta

pytestmark = pytest.mark.e2e


def test_receive_counts_a_whole_stream_and_its_close(service: Service) -> None:
    before = service.metrics()
    url = service.ws_url("/stream?rate=100&count=50")
    code, report = bench(url, "--receive", "-c", "4", "-d", "30", "-w", "2")
    after = service.metrics()
    assert code == 0, report["errors"]
    assert report["mode"] == "receive only"
    assert report["messages"] == {"sent": 0, "received": 200, "lost": 0}
    assert report["stream"] == {
        "expected_per_connection": 50,
        "out_of_order": 0,
        "duplicates": 0,
        "clock_ahead": 0,
    }
    assert report["close_codes"] == {"1000": {"server": 4}}
    assert report["latency_ms"]["samples"] == 200
    assert delta(before, after, "wsrelay_messages_total", route="/stream", direction="out") == 200


def test_receive_reports_exactly_the_messages_the_server_dropped(service: Service) -> None:
    before = service.metrics()
    url = service.ws_url("/stream?rate=200&count=100")
    code, report = bench(url, "--receive", "-c", "3", "-d", "30", "--drop", "0.2", "--seed", "5")
    after = service.metrics()
    dropped = delta(before, after, "wsrelay_faults_injected_total", route="/stream", fault="drop")
    assert code == 1  # loss is an error
    lost = report["messages"]["lost"]
    assert lost == dropped > 0  # counted the same on both sides, tail included
    assert report["messages"]["received"] + lost == 300
    assert report["errors"] == {"never arrived (lost)": lost}
    assert report["faults"] == {"drop": "0.2", "seed": "5"}
    # seed 5 on every connection: each lost the same messages.
    assert lost % 3 == 0


def test_receive_one_way_delay_includes_the_injected_delay(service: Service) -> None:
    url = service.ws_url("/stream?rate=20")
    code, report = bench(url, "--receive", "-c", "2", "-d", "1.5", "--delay", "200ms")
    assert code == 0, report["errors"]
    assert report["messages"]["received"] >= 2
    assert report["messages"]["lost"] == 0
    assert 200 <= report["latency_ms"]["p50"] <= report["latency_ms"]["max"] < 10_000
    assert report["faults"] == {"delay": "200ms"}
    assert any("injected on purpose (delay=200ms)" in n for n in report["client"]["notes"])
    # We stopped listening: a close handshake, the server's reply queued behind the delay.
    assert report["close_codes"] == {"1000": {"client": 2}}


def test_echo_under_drop_counts_the_dropped_replies_as_lost_and_misreads_none(
    service: Service,
) -> None:
    before = service.metrics()
    url = service.ws_url("/faults")
    code, report = bench(url, "-c", "2", "-n", "100", "--rate", "200", "--drop", "0.1")
    after = service.metrics()
    dropped = delta(before, after, "wsrelay_faults_injected_total", route="/faults", fault="drop")
    msgs = report["messages"]
    assert msgs["sent"] == 100
    assert msgs["lost"] == dropped
    assert msgs["received"] + msgs["lost"] == 100
    assert "reply differs from message" not in report["errors"]
    assert code == (1 if dropped else 0)


def test_a_bad_fault_option_is_refused_before_connecting() -> None:
    done = wsrelay("bench", "ws://127.0.0.1:1/faults", "--jitter", "31s")
    assert done.returncode == 2
    assert done.stderr == b"wsrelay bench: --jitter 31s is above the maximum 30s\n"
