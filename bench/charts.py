"""One PNG per workload (matplotlib, no screen): medians as bars, min-max as whiskers."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.stats import Summary

TITLES = {
    "W1": "W1: 100 connections, 32 B text echo",
    "W2": "W2: 100 connections, 16 KiB binary echo",
    "X": "Cross-check: W1 driven by the Node ws client",
    "M": "wsrelay metrics on vs off (W1)",
    "W4": "W4: broadcast, 1 sender -> receivers",
    "W5": "W5: proxy through wsrelay vs direct echo",
}


def _bars(
    ax: Axes,
    labels: list[str],
    spreads: list[tuple[float, float, float]],
    highlight: list[bool],
    unit: str,
    ratios: list[float | None] | None = None,
) -> None:
    med = [m for _lo, m, _hi in spreads]
    err = [[m - lo for lo, m, _hi in spreads], [hi - m for _lo, m, hi in spreads]]
    colors = ["#d62728" if h else "#1f77b4" for h in highlight]
    ax.barh(labels, med, xerr=err, color=colors, capsize=3)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3 * max(hi for _lo, _m, hi in spreads))  # room for the value labels
    ax.set_xlabel(unit)
    for i, m in enumerate(med):
        ratio = ratios[i] if ratios else None
        suffix = f"  ({ratio:.2f}x)" if ratio is not None else ""
        ax.text(m, i, f" {m:,.0f}{suffix}", va="center", fontsize=8)


def throughput_chart(workload: str, summaries: list[Summary], path: Path) -> bool:
    rows = [s for s in summaries if s.workload == workload and s.per_cpu and s.rate]
    if not rows:
        return False
    labels = [s.label + (f" [{s.variant:,} receivers]" if s.variant else "") for s in rows]
    hl = [s.target.startswith("wsrelay") for s in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 0.45 * len(rows) + 1.8), sharey=True)
    per_cpu = [s.per_cpu for s in rows if s.per_cpu]
    _bars(a1, labels, per_cpu, hl, "messages per server-CPU-second", [s.ratio for s in rows])
    _bars(a2, labels, [s.rate for s in rows if s.rate], hl, "messages per second (wall)")
    fig.suptitle(TITLES.get(workload, workload) + "  (median, whiskers min-max over rounds)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def memory_chart(summaries: list[Summary], path: Path) -> bool:
    rows = [s for s in summaries if s.workload == "W3" and s.kib_per_conn]
    if not rows:
        return False
    sizes = sorted({s.variant for s in rows})
    names = list(dict.fromkeys(s.label for s in rows))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(sizes))
    for j, size in enumerate(sizes):
        vals = []
        for name in names:
            s = next((r for r in rows if r.label == name and r.variant == size), None)
            vals.append(s.kib_per_conn[1] if s and s.kib_per_conn else 0.0)
        xs = [i + j * width for i in range(len(names))]
        ax.bar(xs, vals, width=width, label=f"{size:,} connections")
        for x, v in zip(xs, vals, strict=True):
            ax.text(x, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks([i + width * (len(sizes) - 1) / 2 for i in range(len(names))])
    ax.set_xticklabels(names, rotation=15, ha="right", fontsize=8)
    base = next((s for s in rows if s.target == "aiohttp" and s.variant == sizes[-1]), None)
    if base and base.kib_per_conn:
        goal = 1.1 * base.kib_per_conn[1]
        ax.axhline(goal, color="#d62728", linestyle="--", linewidth=1,
                   label=f"goal for wsrelay: 1.1 x bare aiohttp = {goal:.1f} KiB")  # fmt: skip
    ax.set_ylabel("server RSS growth per idle connection (KiB)")
    ax.set_title("W3: idle memory per connection")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def all_charts(summaries: list[Summary], outdir: Path) -> dict[str, str]:
    """Write the charts into `outdir`; return workload -> file name for those written."""
    outdir.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for w in ("W1", "W2", "X", "M", "W4", "W5"):
        name = f"{w.lower()}.png"
        if throughput_chart(w, summaries, outdir / name):
            written[w] = name
    if memory_chart(summaries, outdir / "w3.png"):
        written["W3"] = "w3.png"
    return written
