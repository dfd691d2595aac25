"""From raw records to per-target summaries, ratios to the baseline, and the goals (issue 14
for W1 and W5, issue 7 for the rest).

A message is one WebSocket message echoed (in + out counts once) or, in W4, one delivery to
one receiver. "msgs per server-CPU-second" divides the messages of the window by the CPU
seconds the server process used in that same window.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

#: The L workload's proxy at shares of its own capacity (`variant` of those records).
PROXY_SATURATION = "proxy saturation"
PROXY_LEVEL = "{:.0%} of the proxy's own"

Record = dict[str, Any]

BASELINE = {
    "W1": "aiohttp",
    "W2": "aiohttp",
    "X": "aiohttp",
    "M": "wsrelay-metrics-off",
    "W3": "aiohttp",
    "W4": "aiohttp-naive",
    "W5": "direct",
}
CLIENT_BOUND = 0.90  # client CPU share of its core above which the client may be the limit


@dataclass
class Summary:
    workload: str
    variant: Any
    target: str
    label: str
    client: str
    keepalive: str
    n: int = 0
    skipped: str | None = None
    errors: list[str] = field(default_factory=list)
    rate: tuple[float, float, float] | None = None  # min, median, max msgs/s
    per_cpu: tuple[float, float, float] | None = None  # min, median, max msgs/server-CPU-s
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    rate_asked: float | None = None  # open loop: the scheduled messages per second
    server_util: float | None = None
    client_util: float | None = None
    other_core0: float | None = None  # max share of the server core other processes took
    kib_per_conn: tuple[float, float, float] | None = None
    ratio: float | None = None  # per_cpu median (W3: KiB/conn median) over the baseline's
    notes: list[str] = field(default_factory=list)


def spread(values: list[float]) -> tuple[float, float, float]:
    return (min(values), statistics.median(values), max(values))


def summarise(records: list[Record]) -> list[Summary]:
    groups: dict[tuple[Any, ...], list[Record]] = {}
    for rec in records:
        key = (rec["workload"], rec.get("variant"), rec["target"], rec.get("client", "picows"))
        groups.setdefault(key, []).append(rec)
    out = [_summary(key, recs) for key, recs in groups.items()]
    _ratios(out)
    return out


def _summary(key: tuple[Any, ...], recs: list[Record]) -> Summary:
    workload, variant, target, client = key
    first = recs[0]
    s = Summary(
        workload, variant, target, first.get("label", target), client, first.get("keepalive", "off")
    )
    s.skipped = next((r["skipped"] for r in recs if "skipped" in r), None)
    s.errors = [r["error"] for r in recs if "error" in r]
    ok = [r for r in recs if "skipped" not in r and "error" not in r]
    s.n = len(ok)
    if not ok:
        return s
    if "kib_per_conn" in ok[0]:
        s.kib_per_conn = spread([r["kib_per_conn"] for r in ok])
        pings = [r.get("pings_answered_while_held", 0) for r in ok]
        closed = sum(r.get("closed_by_server", 0) for r in ok)
        if max(pings):
            s.notes.append(f"pings answered while held: {statistics.median(pings):.0f}")
        if closed:
            s.notes.append(f"{closed} connections closed by the server while idle")
        s.other_core0 = max(r["core0_other_util"] for r in ok)
        s.server_util = statistics.median(r["server_util"] for r in ok)
        return s
    s.rate = spread([r["msgs_per_s"] for r in ok])
    s.per_cpu = spread([r["msgs_per_cpu_s"] for r in ok if r.get("msgs_per_cpu_s")] or [0.0])
    s.p50_ms = statistics.median(r["p50_ms"] for r in ok)
    s.p99_ms = statistics.median(r["p99_ms"] for r in ok)
    if all(r.get("p999_ms") is not None for r in ok):
        s.p999_ms = statistics.median(r["p999_ms"] for r in ok)
    if all("rate" in r for r in ok):
        s.rate_asked = statistics.median(r["rate"] for r in ok)
        lost = sum(r.get("lost", 0) for r in ok)
        lag = max(r.get("max_send_lag_ms", 0.0) for r in ok)
        if lost:
            s.notes.append(f"{lost} replies missing 2 s after the window")
        if lag > 1.0:
            s.notes.append(f"the client sent up to {lag:.0f} ms late (latency still counts "
                           "from the schedule)")  # fmt: skip
    s.server_util = statistics.median(r["server_util"] for r in ok)
    s.client_util = statistics.median(r["client_cpu_s"] / r["window_s"] for r in ok)
    s.other_core0 = max(r["core0_other_util"] for r in ok)
    open_loop = all("rate" in r for r in ok)  # its client spins between sends: always busy
    if s.client_util >= CLIENT_BOUND and s.server_util < CLIENT_BOUND and not open_loop:
        s.notes.append("client-bound: the server was not saturated")
    errors = sum(r.get("errors", 0) for r in ok)
    if errors:
        s.notes.append(f"{errors} bad or missing replies")
    if any(r.get("upstream_cpu_s") for r in ok):
        up = statistics.median(r["upstream_cpu_s"] / r["window_s"] for r in ok)
        s.notes.append(f"upstream echo used {up:.0%} of the server core as well")
    return s


def _ratios(summaries: list[Summary]) -> None:
    base: dict[tuple[Any, ...], Summary] = {}
    for s in summaries:
        if s.target == BASELINE.get(s.workload):
            base[(s.workload, s.variant, s.client)] = s
    for s in summaries:
        b = base.get((s.workload, s.variant, s.client))
        if b is None:
            continue
        if s.kib_per_conn and b.kib_per_conn and b.kib_per_conn[1] > 0:
            s.ratio = s.kib_per_conn[1] / b.kib_per_conn[1]
        elif s.per_cpu and b.per_cpu and b.per_cpu[1] > 0:
            s.ratio = s.per_cpu[1] / b.per_cpu[1]


@dataclass
class Goal:
    name: str
    target: str
    measured: str
    status: str  # "met", "not met", "not measured"


def find(
    summaries: list[Summary],
    workload: str,
    target: str,
    variant: Any = None,
    client: str = "picows",
) -> Summary | None:
    for s in summaries:
        if (s.workload, s.target, s.client) == (workload, target, client) and (
            variant is None or s.variant == variant
        ):
            return s
    return None


def _why_missing(s: Summary | None) -> str:
    if s is None:
        return "not run"
    if s.skipped:
        return s.skipped
    if s.errors:
        return "failed: " + s.errors[0]
    return "no baseline"


def _ratio_goal(name: str, s: Summary | None, floor: float, aim: str) -> Goal:
    if s is None or s.ratio is None:
        return Goal(name, f">= {floor:.2f} ({aim})", _why_missing(s), "not measured")
    status = "met" if s.ratio >= floor else "not met"
    return Goal(name, f">= {floor:.2f} ({aim})", f"{s.ratio:.2f}", status)


def goals(summaries: list[Summary], extra: dict[str, Any]) -> list[Goal]:
    out = [
        _ratio_goal(
            "W1 echo, metrics on, msgs/server-CPU-s vs bare aiohttp",
            find(summaries, "W1", "wsrelay"),
            1.15,
            "issue 14; stretch 1.30",
        ),
        _ratio_goal(
            "W2 16 KiB binary vs bare aiohttp", find(summaries, "W2", "wsrelay"), 1.00, "aim 1.15"
        ),
    ]
    sizes = sorted({s.variant for s in summaries if s.workload == "W3"})
    for size in sizes:
        s = find(summaries, "W3", "wsrelay", size)
        target = "<= 1.10 x bare aiohttp (aim 10 KiB)"
        if s is None or s.ratio is None or s.kib_per_conn is None:
            out.append(Goal(f"W3 idle RSS/conn at {size}", target, _why_missing(s), "not measured"))
            continue
        measured = f"{s.ratio:.2f}x ({s.kib_per_conn[1]:.1f} KiB/conn)"
        out.append(
            Goal(
                f"W3 idle RSS/conn at {size}, keepalive on",
                target,
                measured,
                "met" if s.ratio <= 1.10 else "not met",
            )
        )
    out.append(
        _ratio_goal(
            "W4 fan-out vs naive aiohttp send loop",
            find(summaries, "W4", "wsrelay"),
            1.20,
            "deliveries/server-CPU-s",
        )
    )
    out.append(
        _ratio_goal(
            "W5 proxy vs direct echo",
            find(summaries, "W5", "wsrelay-proxy"),
            0.60,
            "issue 14, aim 0.80; msgs per wsrelay-CPU-s",
        )
    )
    on = find(summaries, "M", "wsrelay")
    if on is None or on.ratio is None:
        off = find(summaries, "M", "wsrelay-metrics-off")
        out.append(Goal("metrics cost", "<= 5%", _why_missing(off), "not measured"))
    else:
        cost = 1 - on.ratio
        out.append(
            Goal("metrics cost", "<= 5%", f"{cost:.1%}", "met" if cost <= 0.05 else "not met")
        )
    deflate = extra.get("deflate")
    if deflate:
        out.append(
            Goal(
                "permessage-deflate off by default, opt-in per route",
                "off; on with compress",
                deflate["measured"],
                deflate["status"],
            )
        )
    return out
