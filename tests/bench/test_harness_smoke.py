"""The benchmark harness runs end to end: one short W1 round against wsrelay and bare aiohttp,
and the open-loop latency workload (L) against them and a proxy route.

Not a speed test (no timing is asserted): it checks that `python -m bench` starts both
servers, drives them with the independent load client, reads their CPU from /proc and
writes a report whose records carry every field RESULTS.md is built from.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIELDS = ("msgs", "msgs_per_s", "p50_ms", "p99_ms", "server_cpu_s", "client_cpu_s", "window_s")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    for module in ("picows", "matplotlib"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} missing: the harness needs pip install -e '.[bench]'")
    if shutil.which("taskset") is None:
        pytest.skip("taskset (util-linux) missing: the harness pins servers and client to cores")
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--smoke",
            "--only",
            "W1,L",
            "--targets",
            "wsrelay,aiohttp",
            "--out",
            str(out),
            "--results",
            str(out / "RESULTS.md"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "raw.jsonl").read_text().splitlines()]


def test_each_server_answered_the_load_and_was_measured(smoke_run: Path) -> None:
    recs = {r["target"]: r for r in records(smoke_run) if r["workload"] == "W1"}
    assert set(recs) == {"wsrelay", "aiohttp"}
    for name, rec in recs.items():
        assert "error" not in rec, f"{name}: {rec.get('error')}"
        assert "skipped" not in rec, f"{name}: {rec.get('skipped')}"
        for field in FIELDS:
            assert field in rec, f"{name} record lacks {field}"
        assert rec["msgs"] > 0, f"{name} echoed nothing"
        assert rec["errors"] == 0, f"{name} sent back wrong or short messages"
        assert rec["server_cpu_s"] >= 0


def test_report_has_the_goals_the_w1_table_and_a_chart(smoke_run: Path) -> None:
    text = (smoke_run / "RESULTS.md").read_text()
    assert "## Goals (W1 and W5: issue 14" in text
    assert "## W1: 100 connections x 32 B text round trips" in text
    assert "bare aiohttp + uvloop" in text
    assert (smoke_run / "charts" / "w1.png").stat().st_size > 0
    assert (smoke_run / "summary.csv").read_text().startswith("workload,")


def test_the_latency_workload_measures_each_target_on_a_schedule(smoke_run: Path) -> None:
    recs = [r for r in records(smoke_run) if r["workload"] == "L"]
    saturation = [r for r in recs if r["variant"] == "saturation"]
    assert len(saturation) == 1
    assert saturation[0]["msgs_per_cpu_s"] > 0
    own = [r for r in recs if r["variant"] == "proxy saturation"]
    assert len(own) == 1
    assert own[0]["target"] == "wsrelay-proxy"
    assert own[0]["msgs_per_s"] > 0
    loaded = [r for r in recs if "saturation" not in r["variant"]]
    assert {(r["target"], r["variant"]) for r in loaded} == {
        (target, level)
        for target in ("wsrelay", "aiohttp", "wsrelay-proxy")
        for level in ("50%", "80%")
    } | {("wsrelay-proxy", f"{level} of the proxy's own") for level in ("50%", "80%")}
    for rec in loaded:
        assert "error" not in rec, rec.get("error")
        share = float(rec["variant"].split("%")[0]) / 100
        base = own[0]["msgs_per_s"] if "own" in rec["variant"] else saturation[0]["msgs_per_cpu_s"]
        assert rec["rate"] == round(share * base)
        assert rec["msgs"] > 0
        assert rec["p50_ms"] <= rec["p99_ms"] <= rec["p999_ms"]
    text = (smoke_run / "RESULTS.md").read_text()
    assert "## Latency: open loop at 50% and 80% of bare aiohttp's saturation" in text
    assert "| through wsrelay proxy | 80% |" in text
    assert "| through wsrelay proxy | 80% of the proxy's own |" in text
    assert "The proxy's own capacity (with its upstream on the same core)" in text
