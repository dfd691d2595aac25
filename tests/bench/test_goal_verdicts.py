"""RESULTS.md's verdicts follow from the raw records: ratios, met / not met, and the reasons."""

from __future__ import annotations

from typing import Any

from bench.stats import find, goals, summarise
from bench.workloads import per_step


def echo(workload: str, target: str, msgs: int, cpu: float, **extra: Any) -> dict[str, Any]:
    return {"workload": workload, "target": target, "label": target, "round": 0,
            "client": "picows", "msgs": msgs, "msgs_per_s": msgs / 4, "window_s": 4.0,
            "server_cpu_s": cpu, "msgs_per_cpu_s": msgs / cpu, "p50_ms": 1.0, "p99_ms": 2.0,
            "server_util": cpu / 4, "client_cpu_s": 2.0, "core0_other_util": 0.0,
            "errors": 0, **extra}  # fmt: skip


def test_a_ratio_is_the_median_per_cpu_over_the_baselines() -> None:
    records = [
        echo("W1", "aiohttp", 100_000, 2.0),
        echo("W1", "aiohttp", 120_000, 2.0),
        echo("W1", "aiohttp", 80_000, 2.0),
        echo("W1", "wsrelay", 110_000, 2.0),
    ]
    s = find(summarise(records), "W1", "wsrelay")
    assert s is not None
    assert s.ratio == 1.1
    verdict = {g.name.split()[0]: g for g in goals(summarise(records), {})}["W1"]
    assert (verdict.measured, verdict.status) == ("1.10", "not met")  # issue 14: >= 1.15
    records.append(echo("W1", "wsrelay", 130_000, 2.0))
    verdict = {g.name.split()[0]: g for g in goals(summarise(records), {})}["W1"]
    assert (verdict.measured, verdict.status) == ("1.20", "met")  # median of 1.10 and 1.30


def test_a_goal_below_its_floor_is_not_met_and_a_missing_one_says_why() -> None:
    records = [
        echo("W4", "aiohttp-naive", 100_000, 1.0),
        echo("W4", "wsrelay", 110_000, 1.0),
        {"workload": "W5", "target": "wsrelay-proxy", "label": "proxy",
         "skipped": "not available yet: no proxy route"},
    ]  # fmt: skip
    by_name = {g.name.split()[0]: g for g in goals(summarise(records), {})}
    assert (by_name["W4"].measured, by_name["W4"].status) == ("1.10", "not met")
    assert by_name["W5"].status == "not measured"
    assert "not available yet" in by_name["W5"].measured


def test_an_idle_pass_becomes_one_record_per_connection_count() -> None:
    held = [
        {"rss_after": 1_000_000 + n * kib * 1024, "server_util": 0.01, "core0_other_util": 0.0}
        for n, kib in ((5000, 10), (10000, 12))
    ]
    steps = [{"conns": n, "connect_s": 3.0, "pings_answered_while_held": n} for n in (5000, 10000)]
    rec = {"workload": "W3", "target": "wsrelay", "label": "wsrelay", "round": 0,
           "rss_before": 1_000_000, "held": held, "steps": steps}  # fmt: skip
    out = list(per_step(rec, (5000, 10000)))
    assert [r["variant"] for r in out] == [5000, 10000]
    assert [r["kib_per_conn"] for r in out] == [10.0, 12.0]
