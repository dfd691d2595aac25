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


def test_a_bad_fault_option_is_refused_before_connecting() -> None:
    done = wsrelay("bench", "ws://127.0.0.1:1/faults", "--jitter", "31s")
    assert done.returncode == 2
    assert done.stderr == b"wsrelay bench: --jitter 31s is above the maximum 30s\n"
