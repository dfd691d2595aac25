"""The end of a bench run: workers' results added up, judged, and shown as a table or JSON."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from rich.console import Console
from rich.table import Table

from service.faults.params import FAULT_PARAMS
from service.tools.bench_hist import Histogram
from service.tools.bench_plan import BenchConfig
from service.tools.bench_stream import expected_count
from service.tools.bench_worker import WorkerResult
from service.tools.closenames import describe_close

#: A worker busier than this share of one CPU was the bottleneck, not the server.
CPU_SATURATED = 0.9
#: A worker that waited this share of the run for a CPU was slowed by the machine's other load.
CPU_WAIT_SATURATED = 0.2
#: Sends leaving this late behind their schedule (p99) mean the client could not keep up...
LAG_SATURATED = 0.05
#: ... and this late are worth a word: the latency figures include that jitter.
LAG_NOTED = 0.005
#: Sends that spent this share of the run waiting for the socket to drain: the server is the limit.
BACKPRESSURE = 0.1
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


def summarize(
    config: BenchConfig, results: list[WorkerResult], interrupted: bool = False
) -> dict[str, Any]:
    """Everything the run measured, as JSON-ready data (also what the table shows)."""
    latency, lag = Histogram(), Histogram()
    errors: Counter[str] = Counter()
    closes: Counter[tuple[int, str]] = Counter()
    for r in results:
        latency.merge(r.latency)
        lag.merge(r.lag)
        errors.update(r.errors)
        closes.update(r.close_codes)
    lost = sum(r.lost for r in results)
    if lost:
        errors["never arrived (lost)" if config.receive else "no reply (lost)"] += lost
    stream = None
    if config.receive:
        stream = {
            "expected_per_connection": expected_count(config.target.url),
            "out_of_order": sum(r.out_of_order for r in results),
            "duplicates": sum(r.duplicates for r in results),
            "clock_ahead": sum(r.clock_ahead for r in results),
        }
        if stream["out_of_order"]:
            errors["out of order"] += stream["out_of_order"]
        if stream["duplicates"]:
            errors["duplicates"] += stream["duplicates"]
    sent = sum(r.sent for r in results)
    received = sum(r.received for r in results)
    elapsed = max([r.last_reply for r in results] + [r.last_send for r in results] + [1e-9])
    send_window = max([r.last_send for r in results] + [1e-9])
    cpu = [r.cpu_seconds / r.wall_seconds if r.wall_seconds else 0.0 for r in results]
    cpu_wait = [r.cpu_wait_seconds / r.wall_seconds if r.wall_seconds else 0.0 for r in results]
    wall = sum(r.wall_seconds for r in results) or 1e-9
    backpressure = sum(r.send_wait for r in results) / wall
    reasons, notes = _saturation(config, cpu, cpu_wait, lag, backpressure)
    faults = injected_faults(config.target.url)
    if "delay" in faults or "jitter" in faults:
        shown = ", ".join(f"{k}={faults[k]}" for k in ("delay", "jitter") if k in faults)
        notes.append(f"the latencies include the delay the server injected on purpose ({shown})")
    if stream and stream["clock_ahead"]:
        notes.append(
            f"{stream['clock_ahead']} message(s) carried a ts ahead of this host's clock: "
            "the one-way delays are only as good as the two clocks' sync"
        )
    close_codes: dict[str, dict[str, int]] = {}
    for (code, side), n in sorted(closes.items()):
        close_codes.setdefault(str(code), {})[side] = n
    return {
        "url": config.target.url,
        "mode": _mode(config),
        "latency_basis": _latency_basis(config),
        "faults": faults,
        "stream": stream,
        "interrupted": interrupted,
        "workers": len(results),
        "connections": {
            "requested": config.connections,
            "opened": sum(r.opened for r in results),
            "failed": sum(r.failed for r in results),
        },
        # What bench sends; --receive sends nothing (the stream's URL says what it pushes).
        "message_size": None if config.receive else config.size,
        "message_type": None if config.receive else "binary" if config.binary else "text",
        "requested_rate": config.rate,
        "elapsed_s": round(elapsed, 3),
        "messages": {"sent": sent, "received": received, "lost": lost},
        "bytes": {
            "sent": sum(r.bytes_sent for r in results),
            "received": sum(r.bytes_received for r in results),
        },
        "send_rate": round(sent / send_window, 1),
        "throughput": {
            "messages_per_s": round(received / elapsed, 1),
            "bytes_per_s": round(sum(r.bytes_received for r in results) / elapsed, 1),
        },
        "latency_ms": _latency_ms(latency),
        "errors": dict(errors),
        "close_codes": close_codes,
        "client": {
            "saturated": bool(reasons),
            "reasons": reasons,
            "notes": notes,
            "worker_cpu": [round(c, 3) for c in cpu],
            "worker_cpu_wait": [round(c, 3) for c in cpu_wait],
            "send_backpressure": round(backpressure, 3),
            "load_average": round(os.getloadavg()[0], 2),
            "schedule_lag_ms": {"p99": _ms(lag.quantile(0.99)), "max": _ms(lag.max)}
            if config.open_loop
            else None,
        },
    }


def _mode(config: BenchConfig) -> str:
    if config.receive:
        return "receive only"
    return "open loop" if config.open_loop else "closed loop"


def _latency_basis(config: BenchConfig) -> str:
    if config.receive:
        return (
            "one-way: each message's arrival minus its ts (the server's clock: exact on one "
            "host, as good as the clocks' sync between two)"
        )
    if config.open_loop:
        return "from each message's scheduled send time"
    return "from each message's send time (closed loop: one message in flight per connection)"


def injected_faults(url: str) -> dict[str, str]:
    """The fault parameters the URL's query string asks the server for, as written there."""
    query = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    return {name: query[name] for name in FAULT_PARAMS if name in query}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _latency_ms(h: Histogram) -> dict[str, float | int]:
    out: dict[str, float | int] = {name: _ms(h.quantile(q)) for name, q in QUANTILES}
    out.update(max=_ms(h.max), mean=_ms(h.mean), samples=h.count)
    return out


def _saturation(
    config: BenchConfig,
    cpu: list[float],
    cpu_wait: list[float],
    lag: Histogram,
    backpressure: float,
) -> tuple[list[str], list[str]]:
    """Why the client itself may have limited the result (reasons), and other hints (notes)."""
    reasons = [f"worker {i} used {c:.0%} of a CPU" for i, c in enumerate(cpu) if c >= CPU_SATURATED]
    cores = os.cpu_count() or 1
    waiting = [f"{w:.0%}" for w in cpu_wait if w >= CPU_WAIT_SATURATED]
    busy_machine = (
        [
            f"workers waited {', '.join(waiting)} of the run for a CPU, busy with other work "
            f"(the server too, when it runs on this machine; load average "
            f"{os.getloadavg()[0]:.1f} on {cores} cores)"
        ]
        if waiting
        else []
    )
    reasons += busy_machine
    notes = []
    lag_p99 = lag.quantile(0.99) if config.open_loop else 0.0
    behind = f"sends fell behind their schedule (p99 {_ms(lag_p99)} ms, max {_ms(lag.max)} ms late)"
    if lag_p99 > LAG_SATURATED and backpressure >= BACKPRESSURE and not reasons:
        notes.append(
            f"{behind} because the server read slowly: sends waited for the socket "
            f"{backpressure:.0%} of the time (TCP backpressure); the server is the limit"
        )
    elif lag_p99 > LAG_SATURATED:
        reasons.append(behind)
    elif lag_p99 > LAG_NOTED:
        notes.append(f"{behind}: scheduling jitter on this machine, included in the latencies")
    if reasons and not busy_machine and len(cpu) < cores:
        notes.append(f"more --workers may help ({len(cpu)} of {cores} cores used)")
    return reasons, notes


def render(summary: dict[str, Any], console: Console) -> None:
    """The human report: one table, then a warning when the client was the bottleneck."""
    table = Table(title=f"wsrelay bench {summary['url']}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    conns = summary["connections"]
    msgs = summary["messages"]
    lat = summary["latency_ms"]
    tput = summary["throughput"]
    rate = summary["requested_rate"]
    table.add_row("mode", f"{summary['mode']}, {summary['workers']} worker process(es)")
    table.add_row(
        "connections", f"{conns['opened']} opened of {conns['requested']}, {conns['failed']} failed"
    )
    stream = summary["stream"]
    if stream is not None:
        expected = stream["expected_per_connection"]
        table.add_row(
            "messages",
            f"{msgs['received']:,} received, {msgs['lost']:,} lost, "
            f"{stream['out_of_order']:,} out of order, {stream['duplicates']:,} duplicates"
            + (f" ({expected:,} due per connection)" if expected is not None else ""),
        )
    else:
        table.add_row(
            "messages",
            f"{msgs['sent']:,} sent, {msgs['received']:,} received, {msgs['lost']:,} lost "
            f"({summary['message_size']} B {summary['message_type']})",
        )
        offered = f"{summary['send_rate']:,.1f} msg/s sent"
        if rate:
            offered += f" (asked for {rate:,g})"
        table.add_row("send rate", offered)
    if summary["faults"]:
        table.add_row("injected faults", " ".join(f"{k}={v}" for k, v in summary["faults"].items()))
    table.add_row(
        "throughput",
        f"{tput['messages_per_s']:,.1f} msg/s, {tput['bytes_per_s'] / 1e6:,.2f} MB/s "
        f"over {summary['elapsed_s']} s",
    )
    table.add_row(
        "latency (ms)",
        "  ".join(f"{name} {lat[name]:.3f}" for name, _ in QUANTILES) + f"  max {lat['max']:.3f}",
    )
    table.add_row("", summary["latency_basis"])
    errors = summary["errors"]
    table.add_row(
        "errors", ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) if errors else "none"
    )
    closes = [
        f"{describe_close(int(code))} by {side}: {n}"
        for code, sides in summary["close_codes"].items()
        for side, n in sides.items()
    ]
    table.add_row("close codes", "\n".join(closes) or "none")
    client = summary["client"]
    cpu = "; ".join(
        f"{c:.0%} busy, {w:.0%} waiting for a CPU"
        for c, w in zip(client["worker_cpu"], client["worker_cpu_wait"], strict=True)
    )
    table.add_row("client workers", cpu)
    table.add_row("load average", f"{client['load_average']} on {os.cpu_count()} cores")
    if client["schedule_lag_ms"]:
        lag = client["schedule_lag_ms"]
        table.add_row("schedule lag", f"p99 {lag['p99']:.3f} ms, max {lag['max']:.3f} ms")
    console.print(table)
    if summary["interrupted"]:
        console.print("[yellow]interrupted: the run stopped early[/]")
    if client["saturated"]:
        console.print(
            "[bold yellow]client saturated:[/] " + "; ".join(client["reasons"]) + ". "
            "The numbers describe this client and machine as much as the server."
        )
    for note in client["notes"]:
        console.print(f"[yellow]note:[/] {note}")
