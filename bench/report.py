"""Write RESULTS.md, summary.csv and the charts from one run's raw records.

RESULTS.md is generated: hand-written commentary belongs in bench/NOTES.md, which is
copied in at the end, so a new run never loses it.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from bench.charts import all_charts
from bench.stats import PROXY_SATURATION, Goal, Summary, goals, summarise

SECTIONS = [
    ("W1", "W1: 100 connections x 32 B text round trips"),
    ("X", "Cross-check of W1 with a second client (Node ws)"),
    ("W2", "W2: 100 connections x 16 KiB binary round trips"),
    ("M", "Metrics on vs off (wsrelay, W1 traffic)"),
    ("W4", "W4: broadcast, 1 sender -> receivers"),
    ("W5", "W5: proxy through wsrelay to an echo upstream vs direct"),
]

METHOD = """\
- One command: `make bench` (full, about 12 minutes) or `make bench-quick` (about 3 minutes,
  written to `bench/.work/quick/`, not here). `python -m bench --help` lists the knobs.
- Every server runs as its own process pinned to **core 0** (`taskset -c 0`); the load client
  and the harness are pinned to **core 1**. Server and client run at `nice -5` (when root) so
  that other work on this shared machine takes less of their cores, and before each
  measurement the harness waits (at most 5 s, 1 minute per run in all) for both cores to
  be below 25% busy. wsrelay runs as shipped: `python -m service serve`
  with `WSRELAY_*` settings (routes `/echo` and `/rooms/{room}`, log level warning), metrics
  on, keepalive on (default 20 s ping; 3 s in W3 so pings run while the connections idle).
- The load client (`bench/loadgen.py`) is picows on uvloop: a Cython WebSocket client that
  never imports the server code. Closed loop: each of 100 connections sends one message and
  sends the next when the whole echo is back; a message counts once (in + out). Latency is
  that round trip, every message sampled. In W4 a message counts once per receiver it
  reaches and its latency runs from the sender's send to that receiver's receipt.
- Targets run in **alternating rounds** (round r starts with the r-th target), each round a
  fresh server process, a warm-up, then a timed window. The client prints markers around
  the window; the harness reads the server's CPU (`/proc/PID/stat` utime+stime, all threads)
  and each core's busy time (`/proc/stat`) on those markers, so server CPU, client CPU and
  the other processes' share of core 0 cover the same window.
- **msgs per server-CPU-second** = messages in the window / server CPU seconds in the
  window. It is the figure the goals use: unlike msgs/s it hardly moves when other work
  shares the machine. A server that is not saturated (its CPU share below ~90%) batches
  less per event-loop turn, so its per-CPU figure is, if anything, pessimistic.
- The client is shown not to be the limit by its own CPU share (column "client CPU") and by
  the cross-check: the same W1 ratio measured with the Node `ws` client (`bench/peers/node/
  client.js`). A row where the client used >= 90% of its core while the server had spare
  CPU is marked client-bound.
- W3 opens the connections 200 at a time from 16 loopback source addresses (127.0.0.2-17),
  holds them idle answering pings, and reads the server's RSS (`/proc/PID/statm`) before
  (one warm connection open) and after; the delta over the connection count is the cost.
- Ratios are medians over rounds divided by the baseline's median (bare aiohttp + uvloop;
  the naive aiohttp send loop in W4; the direct echo in W5; metrics off in M).
- Loopback only, every client loop bounded by a message count and a deadline; the harness
  kills a client that outlives its deadline and stops each server it started by its pid.
"""


def fmt(x: float | None, spec: str = ",.0f") -> str:
    return "-" if x is None else format(x, spec)


def spread_cell(t: tuple[float, float, float] | None, spec: str = ",.0f") -> str:
    if t is None:
        return "-"
    lo, med, hi = t
    return f"{lo:{spec}} / **{med:{spec}}** / {hi:{spec}}"


def throughput_table(rows: list[Summary]) -> list[str]:
    out = [
        "| target | rounds | msgs/s min / **median** / max "
        "| msgs per server-CPU-s min / **median** / max | ratio | p50 ms | p99 ms "
        "| server CPU | client CPU | other load on core 0 | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        if s.n == 0:
            out.append(
                f"| {s.label} | 0 | - | - | - | - | - | - | - | - | "
                f"{s.skipped or 'failed: ' + '; '.join(s.errors)[:200]} |"
            )
            continue
        notes = "; ".join(s.notes + ([f"{len(s.errors)} failed round(s)"] if s.errors else []))
        out.append(
            f"| {s.label} | {s.n} | {spread_cell(s.rate)} | {spread_cell(s.per_cpu)} | "
            f"{fmt(s.ratio, '.2f')} | {fmt(s.p50_ms, '.2f')} | {fmt(s.p99_ms, '.2f')} | "
            f"{fmt(s.server_util, '.0%')} | {fmt(s.client_util, '.0%')} | "
            f"{fmt(s.other_core0, '.0%')} | {notes} |"
        )
    return out


LATENCY = """\
`bench/loadgen.py open`: 100 connections, 32 B text, messages on a fixed schedule round robin
over the connections at the rate shown, each latency counted from the message's *scheduled*
send time (what `wsrelay bench --rate` does; its Python client tops out near 45,000 msgs/s on
one core here, below half of bare aiohttp's saturation, so the harness drives the same method
from its picows client, which spins between sends, so its CPU column is always high). The
rate is a share of bare aiohttp's closed-loop msgs per CPU-second (W1 traffic), measured at
the start of this workload. "done" counts the replies that came inside the window; the
percentiles cover every message scheduled in it (replies up to 2 s after it still count) and
are medians over rounds. The proxy row's upstream is the bare aiohttp echo on the server core,
so at bare aiohttp's rates that core carries both and is full or over; the rows "of the
proxy's own" load the proxy at shares of the pair's own closed-loop msgs/s, measured just
before them: rates it can serve.
"""


def latency_table(rows: list[Summary]) -> list[str]:
    sat = next((s for s in rows if s.variant == "saturation"), None)
    out = [LATENCY]
    if sat is not None and sat.per_cpu is not None:
        out += [f"Bare aiohttp's saturation in this run: **{sat.per_cpu[1]:,.0f} msgs/s** "
                f"per CPU-second of its core (closed loop; it ran at "
                f"{fmt(sat.server_util, '.0%')} of the core, other processes took "
                f"{fmt(sat.other_core0, '.0%')}).", ""]  # fmt: skip
    proxy_sat = next((s for s in rows if s.variant == PROXY_SATURATION), None)
    if proxy_sat is not None and proxy_sat.rate is not None:
        out += [f"The proxy's own capacity (with its upstream on the same core): "
                f"**{proxy_sat.rate[1]:,.0f} msgs/s** (closed loop).", ""]  # fmt: skip
    out += [
        "| target | load | msgs/s asked / done | p50 ms | p99 ms | p99.9 ms | server CPU "
        "| client CPU | other load on core 0 | notes |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    saturations = ("saturation", PROXY_SATURATION)
    for s in sorted(
        (s for s in rows if s.variant not in saturations), key=lambda s: (str(s.variant), s.target)
    ):
        if s.n == 0:
            out.append(
                f"| {s.label} | {s.variant} | - | - | - | - | - | - | - | "
                f"{s.skipped or 'failed: ' + '; '.join(s.errors)[:200]} |"
            )
            continue
        done = s.rate[1] if s.rate else None
        out.append(
            f"| {s.label} | {s.variant} | {fmt(s.rate_asked)} / {fmt(done)} | "
            f"{fmt(s.p50_ms, '.2f')} | {fmt(s.p99_ms, '.2f')} | {fmt(s.p999_ms, '.2f')} | "
            f"{fmt(s.server_util, '.0%')} | {fmt(s.client_util, '.0%')} | "
            f"{fmt(s.other_core0, '.0%')} | {'; '.join(s.notes)} |"
        )
    return out


def memory_table(rows: list[Summary]) -> list[str]:
    out = [
        "| target | connections | keepalive | KiB per idle connection min / **median** / max "
        "| ratio to bare aiohttp | server CPU while idle | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in rows:
        if s.n == 0:
            out.append(
                f"| {s.label} | {s.variant} | {s.keepalive} | - | - | "
                f"{s.skipped or 'failed: ' + '; '.join(s.errors)[:200]} |"
            )
            continue
        out.append(
            f"| {s.label} | {s.variant:,} | {s.keepalive} | "
            f"{spread_cell(s.kib_per_conn, '.1f')} | {fmt(s.ratio, '.2f')} | "
            f"{fmt(s.server_util, '.1%')} | "
            f"{'; '.join(s.notes)} |"
        )
    return out


def goals_table(gs: list[Goal]) -> list[str]:
    out = ["| goal | target | measured | status |", "|---|---|---|---|"]
    mark = {"met": "**met**", "not met": "**not met**", "not measured": "not measured"}
    out += [f"| {g.name} | {g.target} | {g.measured} | {mark[g.status]} |" for g in gs]
    return out


def write_csv(records: list[dict[str, Any]], path: Path) -> None:
    cols = [
        "workload",
        "variant",
        "target",
        "client",
        "round",
        "msgs",
        "window_s",
        "msgs_per_s",
        "server_cpu_s",
        "msgs_per_cpu_s",
        "p50_ms",
        "p99_ms",
        "client_cpu_s",
        "server_util",
        "core0_other_util",
        "conns",
        "rss_before",
        "rss_after",
        "kib_per_conn",
        "errors",
        "skipped",
        "error",
    ]
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in records:
            w.writerow(r)


def render(
    records: list[dict[str, Any]],
    meta: dict[str, Any],
    outdir: Path,
    results_md: Path,
    notes: Path | None,
) -> str:
    """Write summary.csv and charts into `outdir` and the Markdown report to `results_md`."""
    summaries = summarise(records)
    charts = all_charts(summaries, outdir / "charts")
    write_csv(records, outdir / "summary.csv")
    rel = os.path.relpath(outdir, results_md.parent)
    md: list[str] = [
        "# wsrelay benchmark results",
        "",
        f"Generated by `python -m bench` ({meta['plan']} plan) on {meta['started']} UTC; "
        f"took {meta['took_s'] / 60:.1f} min. wsrelay at commit `{meta['commit']}`. "
        "Regenerate with `make bench`; commentary lives in `bench/NOTES.md` (copied in below).",
        "",
        "## Goals (W1 and W5: issue 14; the rest: issue 7)",
        "",
        *goals_table(goals(summaries, meta)),
        "",
        "## Method",
        "",
        METHOD,
        "## Machine and load conditions",
        "",
        f"- CPU: {meta['cpu']}, {meta['cores']} cores; kernel {meta['kernel']}.",
        f"- Load average (1/5/15 min) at start {meta['load_start']}, at end {meta['load_end']}; "
        f"the harness waited {meta.get('waited_for_quiet_s', 0):.0f} s in all for quiet cores.",
        "- Other agents were working on the machine during the run: the column 'other load on "
        "core 0' is the share of the server core used by processes other than the server in "
        "each window (max over rounds). Read msgs/s with that in mind; the per-CPU figures are "
        "much less sensitive to it.",
        "",
        "| component | version |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in meta["versions"].items()],
        "",
        f"Raw data: [`{rel}/raw.jsonl`]({rel}/raw.jsonl) (one JSON record per measurement), "
        f"[`{rel}/summary.csv`]({rel}/summary.csv), "
        f"run metadata [`{rel}/run.json`]({rel}/run.json).",
        "",
    ]
    for key, title in SECTIONS:
        rows = [s for s in summaries if s.workload == key]
        if not rows:
            continue
        md += [f"## {title}", "", *throughput_table(rows), ""]
        if key in charts:
            md += [f"![{key}]({rel}/charts/{charts[key]})", ""]
    rows = [s for s in summaries if s.workload == "L"]
    if rows:
        md += ["## Latency: open loop at 50% and 80% of bare aiohttp's saturation", "",
               *latency_table(rows), ""]  # fmt: skip
    rows = [s for s in summaries if s.workload == "W3"]
    if rows:
        md += ["## W3: idle memory per connection", "", *memory_table(rows), ""]
        if "W3" in charts:
            md += [f"![W3]({rel}/charts/{charts['W3']})", ""]
    if notes is not None and notes.exists():
        md += ["## Notes and profile", "", notes.read_text().strip(), ""]
    text = "\n".join(md)
    results_md.write_text(text)
    return text
