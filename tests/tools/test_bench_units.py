"""Bench pieces without sockets: the plan, the schedule, payloads, the histogram, the verdict."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from service.tools.bench_hist import Histogram
from service.tools.bench_plan import (
    BenchConfig,
    Payloads,
    plan_workers,
    scheduled_messages,
)
from service.tools.bench_report import summarize
from service.tools.bench_worker import WorkerResult
from service.tools.target import Target, normalize_url, parse_header

TARGET = Target("ws://127.0.0.1:1/echo")


def test_connections_are_dealt_to_workers_and_quotas_add_up() -> None:
    config = BenchConfig(TARGET, connections=7, duration=None, messages=100, workers=3)
    plans = plan_workers(config)
    assert [len(p.connections) for p in plans] == [3, 2, 2]
    conns = [c for p in plans for c in p.connections]
    assert sorted(c.index for c in conns) == list(range(7))
    assert sum(c.quota or 0 for c in conns) == 100
    assert {c.quota for c in conns} == {14, 15}


def test_never_more_workers_than_connections() -> None:
    assert len(plan_workers(BenchConfig(TARGET, connections=2, workers=8))) == 2


def test_the_open_loop_schedule_spreads_connections_over_one_interval() -> None:
    config = BenchConfig(TARGET, connections=4, duration=2.0, rate=100.0, workers=2)
    assert config.interval == pytest.approx(0.04)
    conns = sorted((c for p in plan_workers(config) for c in p.connections), key=lambda c: c.index)
    assert [c.phase for c in conns] == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert conns[1].due(3, config.interval) == pytest.approx(0.13)
    # 100 msg/s for 2 s is 200 messages, whatever the phases.
    assert scheduled_messages(config) == 200


def test_a_ramp_delays_each_connection_and_the_schedule_counts_it() -> None:
    config = BenchConfig(TARGET, connections=4, duration=2.0, rate=100.0, ramp=1.0)
    starts = sorted(c.start for p in plan_workers(config) for c in p.connections)
    assert starts == [0.0, 0.25, 0.5, 0.75]
    # 25 msg/s each from start + phase (0, 0.26, 0.52, 0.78 s) until 2 s: 2/0.04, 1.74/0.04, ...
    assert scheduled_messages(config) == 50 + 44 + 37 + 31


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"connections": 0}, "--connections"),
        ({"duration": None}, "exactly one"),
        ({"messages": 5}, "exactly one"),
        ({"size": 0}, "--size"),
        ({"rate": 0.0}, "--rate"),
        ({"ramp": 10.0}, "--ramp must be shorter"),
    ],
)
def test_bad_options_are_named(changes: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        BenchConfig(TARGET, **changes)  # type: ignore[arg-type]


def test_payloads_carry_their_sequence_and_have_the_size() -> None:
    text = Payloads(32, binary=False)
    assert text.make(255) == "00000000000000ff" + "x" * 16
    assert text.matches(255, "00000000000000ff" + "x" * 16)
    assert not text.matches(254, text.make(255))
    binary = Payloads(4, binary=True)
    assert binary.make(0x1234) == b"1234"
    assert len(Payloads(1000, binary=True).make(7)) == 1000


def test_histogram_quantiles_are_within_about_one_percent() -> None:
    rng = random.Random(7)
    samples = [rng.lognormvariate(-7, 1) for _ in range(20_000)]
    h = Histogram()
    for s in samples:
        h.record(s)
    samples.sort()
    for q in (0.5, 0.9, 0.99, 0.999):
        exact = samples[int(q * len(samples)) - 1]
        assert h.quantile(q) == pytest.approx(exact, rel=0.02)
    assert h.max == samples[-1]
    assert h.quantile(1.0) == samples[-1]


def test_histograms_merge_exactly() -> None:
    a, b, both = Histogram(), Histogram(), Histogram()
    for i in range(1, 500):
        (a if i % 2 else b).record(i / 1e4)
        both.record(i / 1e4)
    a.merge(b)
    assert a.counts == both.counts
    assert (a.count, a.max) == (both.count, both.max)


def _result(worker: int, cpu: float, **counts: int) -> WorkerResult:
    r = WorkerResult(worker, cpu_seconds=cpu, wall_seconds=1.0, last_send=1.0, last_reply=1.0)
    for key, value in counts.items():
        setattr(r, key, value)
    r.latency.record(0.001)
    r.close_codes = Counter({(1000, "client"): 2})
    return r


def test_a_busy_worker_is_reported_as_client_saturation() -> None:
    config = BenchConfig(TARGET, connections=4, workers=2)
    calm = summarize(config, [_result(0, 0.3, sent=10, received=10)] * 2)
    assert calm["client"]["saturated"] is False
    busy = summarize(config, [_result(0, 0.3), _result(1, 0.97)])
    assert busy["client"]["saturated"] is True
    assert "worker 1 used 97% of a CPU" in busy["client"]["reasons"]


def _late(seconds: float, **fields: float) -> WorkerResult:
    result = _result(0, 0.2)
    for _ in range(100):
        result.lag.record(seconds)
    for key, value in fields.items():
        setattr(result, key, value)
    return result


def test_sends_far_behind_schedule_are_client_saturation() -> None:
    config = BenchConfig(TARGET, connections=1, rate=10.0)
    client = summarize(config, [_late(0.2)])["client"]
    assert client["saturated"] is True
    assert "fell behind their schedule" in client["reasons"][0]


def test_a_little_jitter_is_a_note_not_saturation() -> None:
    client = summarize(BenchConfig(TARGET, connections=1, rate=10.0), [_late(0.01)])["client"]
    assert client["saturated"] is False
    assert "jitter" in client["notes"][0]


def test_lag_from_a_slow_reading_server_blames_the_server() -> None:
    config = BenchConfig(TARGET, connections=1, rate=10.0)
    client = summarize(config, [_late(0.2, send_wait=0.5)])["client"]
    assert client["saturated"] is False
    assert "the server is the limit" in client["notes"][0]


def test_waiting_for_a_cpu_is_client_saturation() -> None:
    config = BenchConfig(TARGET, connections=2, workers=2)
    client = summarize(config, [_late(0.0, cpu_wait_seconds=0.5)])["client"]
    assert client["saturated"] is True
    assert "waited 50% of the run for a CPU" in client["reasons"][0]


def test_lost_replies_count_as_errors_and_close_codes_are_grouped() -> None:
    config = BenchConfig(TARGET, connections=2)
    summary = summarize(config, [_result(0, 0.1, sent=5, received=3, lost=2)])
    assert summary["errors"] == {"no reply (lost)": 2}
    assert summary["close_codes"] == {"1000": {"client": 2}}
    assert summary["messages"] == {"sent": 5, "received": 3, "lost": 2}


def test_urls_and_headers_are_checked() -> None:
    assert normalize_url("http://h:1") == "ws://h:1/"
    assert normalize_url("https://h/x?y=1") == "wss://h/x?y=1"
    with pytest.raises(ValueError, match="expected ws://"):
        normalize_url("tcp://h")
    assert parse_header("X-A:  b c ") == ("X-A", "b c")
    with pytest.raises(ValueError, match="NAME: VALUE"):
        parse_header("nocolon")
