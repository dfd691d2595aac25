"""`python -m bench`: run the workloads, write raw records, RESULTS.md and the charts.

python -m bench                 # full plan -> bench/results/, bench/RESULTS.md
python -m bench --quick         # short plan -> bench/.work/quick/
python -m bench --only W1,W3    # a subset
python -m bench --report-only   # re-render RESULTS.md from bench/results/raw.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.checks import deflate_check
from bench.harness import CLIENT_CORE
from bench.procstat import loadavg
from bench.report import render
from bench.targets import ROOT, versions
from bench.workloads import WORKLOADS, Plan, log

BENCH = ROOT / "bench"


def cpu_model() -> str:
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or "uncommitted"


def prepare_process() -> None:
    """Harness on the client core; descriptors raised for 10,000 connections per process."""
    if os.cpu_count() and (os.cpu_count() or 0) > CLIENT_CORE:
        os.sched_setaffinity(0, {CLIENT_CORE})
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 20000:
        log(f"warning: open-file limit is {hard}; W3 at 10,000 connections needs ~10,100")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    plan = p.add_mutually_exclusive_group()
    plan.add_argument("--quick", action="store_true", help="1 round, short windows (~3 min)")
    plan.add_argument("--smoke", action="store_true", help="seconds; for the harness test")
    p.add_argument("--only", default="", help=f"comma list of {','.join(WORKLOADS)}")
    p.add_argument("--targets", default="", help="comma list of target names to keep")
    p.add_argument("--out", type=Path, help="directory for raw data and charts")
    p.add_argument("--results", type=Path, help="where to write the Markdown report")
    p.add_argument("--idle-sizes", default="", help="W3 connection counts, e.g. 10000")
    p.add_argument("--report-only", action="store_true")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    name = "quick" if args.quick else "smoke" if args.smoke else "full"
    out: Path = args.out or (BENCH / "results" if name == "full" else BENCH / ".work" / name)
    results_md: Path = args.results or (
        BENCH / "RESULTS.md" if name == "full" else out / "RESULTS.md"
    )
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "raw.jsonl"
    if args.report_only:
        stored = [json.loads(line) for line in raw.read_text().splitlines() if line.strip()]
        render(
            stored, json.loads((out / "run.json").read_text()), out, results_md, BENCH / "NOTES.md"
        )
        log(f"wrote {results_md}")
        return 0
    prepare_process()
    keep = frozenset(t.strip() for t in args.targets.split(",") if t.strip())
    plan = replace(getattr(Plan, name)(out / "logs"), keep=keep)
    if args.idle_sizes:
        plan = replace(plan, idle_sizes=tuple(int(x) for x in args.idle_sizes.split(",")))
    chosen = [w.strip() for w in args.only.split(",") if w.strip()] or list(WORKLOADS)
    started = time.monotonic()
    meta: dict[str, Any] = {
        "plan": name,
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "commit": commit(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "load_start": " / ".join(f"{x:.2f}" for x in loadavg()),
        "versions": versions(),
        "workloads": chosen,
    }
    records: list[dict[str, Any]] = []
    with raw.open("w") as f:
        for key in chosen:
            log(f"{key}: {WORKLOADS[key].__doc__ or ''}".splitlines()[0])
            for rec in WORKLOADS[key](plan):
                records.append(rec)
                f.write(json.dumps(rec) + "\n")
                f.flush()
    meta["deflate"] = deflate_check(plan.logdir)
    meta["load_end"] = " / ".join(f"{x:.2f}" for x in loadavg())
    meta["took_s"] = time.monotonic() - started
    meta["waited_for_quiet_s"] = sum(r.get("waited_for_quiet_s", 0.0) for r in records)
    (out / "run.json").write_text(json.dumps(meta, indent=2))
    render(records, meta, out, results_md, BENCH / "NOTES.md" if name == "full" else None)
    log(f"wrote {raw}, {results_md} in {meta['took_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
