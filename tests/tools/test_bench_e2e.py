"""`wsrelay bench` against `wsrelay serve`: its counts agree with the server's own /metrics."""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from service.tools.bench_plan import BenchConfig, scheduled_messages
from service.tools.target import Target
from tests.support import Metrics, Service
from tests.tools.conftest import wsrelay

pytestmark = pytest.mark.e2e


def bench(*args: str) -> tuple[int, dict[str, Any]]:
    done = wsrelay("bench", *args, "--json", timeout=90)
    assert done.stdout, done.stderr.decode()
    return done.returncode, json.loads(done.stdout)


def delta(before: Metrics, after: Metrics, name: str, **labels: str) -> float:
    return after.total(name, **labels) - before.total(name, **labels)


def test_open_loop_counts_match_the_server_and_the_rate_holds(service: Service) -> None:
    before = service.metrics()
    code, report = bench(service.ws_url("/echo"), "-c", "4", "-d", "2", "--rate", "200", "-w", "2")
    after = service.metrics()
    assert code == 0, report["errors"]
    msgs = report["messages"]
    # Count-based: the schedule of 200 msg/s over 2 s is 400 messages, and all were sent...
    config = BenchConfig(Target("ws://x/"), connections=4, duration=2.0, rate=200.0)
    assert msgs["sent"] == scheduled_messages(config) == 400
    # ... and the server counted exactly those, and echoed each (minus any still in flight).
    assert delta(before, after, "wsrelay_messages_total", route="/echo", direction="in") == 400
    out = delta(before, after, "wsrelay_messages_total", route="/echo", direction="out")
    assert msgs["received"] <= out <= msgs["received"] + msgs["lost"]
    assert msgs["lost"] == 0
    # The bench's own measure of its sending: on schedule, not bunched up at the end.
    assert 0.75 * 200 <= report["send_rate"] <= 1.05 * 200
    assert report["mode"] == "open loop"
    assert report["workers"] == 2
    assert report["latency_ms"]["samples"] == 400
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"] <= report["latency_ms"]["max"]
    assert report["close_codes"] == {"1000": {"client": 4}}
    opened = delta(before, after, "wsrelay_connections_opened_total", route="/echo")
    assert opened == report["connections"]["opened"] == 4


def test_closed_loop_binary_messages_mode_counts_bytes_too(service: Service) -> None:
    before = service.metrics()
    code, report = bench(
        service.ws_url("/echo"), "-c", "3", "-n", "300", "--binary", "--size", "64", "-w", "2"
    )
    after = service.metrics()
    assert code == 0, report["errors"]
    assert report["messages"] == {"sent": 300, "received": 300, "lost": 0}
    assert report["bytes"] == {"sent": 300 * 64, "received": 300 * 64}
    assert report["mode"] == "closed loop"
    assert (
        delta(before, after, "wsrelay_messages_total", route="/echo", direction="in", type="binary")
        == 300
    )
    assert (
        delta(before, after, "wsrelay_message_bytes_total", route="/echo", direction="in")
        == 300 * 64
    )


def test_a_ramp_opens_connections_over_time_and_keeps_the_schedule(service: Service) -> None:
    code, report = bench(
        service.ws_url("/echo"), "-c", "4", "-d", "1.5", "--rate", "80", "--ramp", "1", "-w", "1"
    )
    assert code == 0, report["errors"]
    config = BenchConfig(Target("ws://x/"), connections=4, duration=1.5, rate=80.0, ramp=1.0)
    assert report["messages"]["sent"] == scheduled_messages(config)
    assert report["connections"] == {"requested": 4, "opened": 4, "failed": 0}


def test_refusals_and_server_closes_are_errors_with_exit_1(service: Service) -> None:
    code, report = bench(service.ws_url("/nowhere"), "-c", "2", "-n", "4", "-w", "1")
    assert code == 1
    assert report["errors"] == {"connect: HTTP 404": 2}
    assert report["connections"]["failed"] == 2

    code, report = bench(service.ws_url("/tiny"), "-c", "2", "-n", "4", "--size", "64", "-w", "1")
    assert code == 1
    assert report["errors"]["closed by server (1009)"] == 2
    assert report["close_codes"]["1009"] == {"server": 2}


def test_bad_options_exit_2() -> None:
    done = wsrelay("bench", "ws://127.0.0.1:1/echo", "--size", "0")
    assert done.returncode == 2
    assert b"--size must be at least 1" in done.stderr


BENCH_LIGHT = ("-c", "2", "-d", "1.5", "--rate", "100", "-w", "1")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class BenchTerminal:
    """`wsrelay bench` on a pseudo-terminal, in its own session (for Ctrl-C)."""

    def __init__(self, *args: str) -> None:
        self.fd, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "bench", *args],
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "COLUMNS": "140"},
            start_new_session=True,
            # A terminal's foreground job takes Ctrl-C even when this suite runs as a
            # background job (which starts with SIGINT ignored, and a child inherits that).
            preexec_fn=_default_sigint,
        )
        os.close(slave)
        self.output = ""

    def read_until(self, text: str, timeout: float = 60) -> None:
        """Reads until `text` shows (or the program ends); fails after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while text not in self.output and time.monotonic() < deadline:
            if select.select([self.fd], [], [], 1)[0]:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:  # the program ended and closed the terminal
                    break
                self.output += chunk.decode(errors="replace")
        assert text in self.output, self.output

    def finish(self) -> int:
        code = self.process.wait(timeout=30)
        os.close(self.fd)
        return code


def test_a_terminal_sees_live_progress_then_the_table(service: Service) -> None:
    term = BenchTerminal(service.ws_url("/echo"), *BENCH_LIGHT)
    term.read_until("msg/s p50")  # the live line: rate and latency while it runs
    term.read_until("p99.9")  # the final table
    assert term.finish() == 0
    assert "throughput" in term.output


def test_ctrl_c_stops_early_with_a_report_and_exit_130(service: Service) -> None:
    term = BenchTerminal(service.ws_url("/echo"), "-c", "2", "-d", "60", "--rate", "50")
    term.read_until("msg/s p50")  # running
    os.killpg(term.process.pid, signal.SIGINT)
    term.read_until("interrupted: the run stopped early")
    assert term.finish() == 130
    assert "1000 (normal closure) by client: 2" in term.output
