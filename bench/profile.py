"""`python -m bench.profile`: sample wsrelay with py-spy while the W1 load runs against it.

Writes the collapsed stacks (flamegraph input) and a table of the top frames by own time and
by time including callees, so the hot path is optimised from a profile and not from guesses.
py-spy samples from outside the process (`--nonblocking`), so the server is not slowed by it.
`--target proxy` profiles wsrelay's proxy route under the W5 load (its bare aiohttp echo
upstream on the same core); `--perf` adds a `perf record` of the same window, summed by
shared object (kernel, interpreter, uvloop, aiohttp's C reader), when perf is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench.harness import client_argv, drive, running
from bench.targets import ROOT, Target, echo_targets
from bench.workloads import proxy_target

OUT = ROOT / "bench" / "results"
PERF_REPORT = ("perf", "report", "--stdio", "-g", "none", "--no-children")


def frame_name(frame: str) -> str:
    """`h (service/modes/echo.py:42)` -> `h (service/modes/echo.py)`: one row per function."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
    path = path.replace(str(ROOT) + "/", "")
    return f"{name} ({path})" if path else name


def top_frames(
    collapsed: str, n: int = 25
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        k = int(count)
        total += k
        frames = [frame_name(f) for f in stack.split(";") if f]
        if frames:
            own[frames[-1]] += k
        for f in set(frames):
            inclusive[f] += k
    return total, own.most_common(n), inclusive.most_common(n)


def render(total: int, own: list[tuple[str, int]], inclusive: list[tuple[str, int]]) -> str:
    lines = [f"py-spy samples: {total}", "", "| own % | frame |", "|---|---|"]
    lines += [f"| {100 * k / total:.1f} | `{f}` |" for f, k in own]
    lines += ["", "| incl. % | frame |", "|---|---|"]
    lines += [f"| {100 * k / total:.1f} | `{f}` |" for f, k in inclusive]
    return "\n".join(lines) + "\n"


def perf_summary(data: Path) -> str:
    """`perf report` of a recording: by shared object (kernel, python, uvloop, aiohttp's C
    reader), then the top symbols."""
    out: list[str] = []
    for sort, head, n in (("dso", "shared object", 8), ("dso,sym", "shared object, symbol", 15)):
        report = subprocess.run(
            [*PERF_REPORT, "-i", str(data), "--sort", sort],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout
        rows = [r.strip() for r in report.splitlines() if r.strip() and not r.startswith("#")]
        out += ["", f"| % of samples | {head} |", "|---|---|"]
        for row in rows[:n]:
            pct, _, rest = row.partition(" ")
            out.append(f"| {pct.rstrip('%')} | `{' '.join(rest.split())}` |")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--type", choices=("text", "binary"), default="text")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument(
        "--target",
        default="wsrelay",
        help="wsrelay, proxy (the W5 route), or a Python peer (e.g. aiohttp) to compare",
    )
    p.add_argument("--perf", action="store_true", help="also `perf record` the same window")
    p.add_argument("--tag", default="", help="suffix of the output files, e.g. before/after")
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    workload = "w5" if args.target == "proxy" else "w1"
    stem = f"profile-{workload}-{args.type}"
    stem += "" if args.target in ("wsrelay", "proxy") else f"-{args.target}"
    stem += f"-{args.tag}" if args.tag else ""
    raw = args.out / f"{stem}.collapsed.txt"
    with contextlib.ExitStack() as stack:
        if args.target == "proxy":
            relay, path = proxy_target(stack, args.out / "logs"), "/proxy"
            servers = [stack.enter_context(running(relay, args.out / "logs"))]
        else:
            target: Target = next(t for t in echo_targets() if t.name == args.target)
            if target.missing:
                print(target.missing, file=sys.stderr)
                return 1
            servers, path = [stack.enter_context(running(target, args.out / "logs"))], "/echo"
        server = servers[0]
        record = [
            spy,
            "record",
            "--pid",
            str(server.pid),
            "--rate",
            "250",
            "--nonblocking",
            "--duration",
            str(int(args.duration)),
            "--format",
            "raw",
            "--output",
            str(raw),
        ]
        spy_proc = subprocess.Popen(
            ["taskset", "-c", "1", *record], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        perf_data = args.out / f"{stem}.perf.data"
        perf_proc = None
        if args.perf and shutil.which("perf"):
            perf_proc = subprocess.Popen(
                ["taskset", "-c", "1", "perf", "record", "-F", "999", "-g", "-p",
                 str(server.pid), "-o", str(perf_data), "--", "sleep", str(int(args.duration))],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
        threading.Event().wait(0.5)  # py-spy attached before the load starts
        argv = client_argv(
            "picows",
            "echo",
            server.target.url(server.port, path),
            conns=100,
            size=args.size,
            type=args.type,
            warmup=0.5,
            duration=args.duration,
        )
        report = drive(servers, argv, timeout=args.duration + 60)
        spy_proc.wait(args.duration + 30)
        if perf_proc is not None:
            perf_proc.wait(args.duration + 30)
    total, own, inclusive = top_frames(raw.read_text())
    label = "wsrelay proxy route (W5 load)" if args.target == "proxy" else server.target.label
    text = (
        f"{label} under the W1 load ({args.size} B {args.type}, 100 connections): "
        f"{report['msgs_per_s']:,.0f} msgs/s, server CPU {report['server_util']:.0%} "
        "(profiled, so slower than unprofiled)\n\n" + render(total, own, inclusive)
    )
    if perf_proc is not None and perf_data.exists():
        text += "\nperf record -F 999 -g of the same window, by shared object:\n\n"
        text += perf_summary(perf_data)
        if not os.environ.get("BENCH_KEEP_PERF"):
            perf_data.unlink()
    md = args.out / f"{stem}.md"
    md.write_text(text)
    print(text)
    print(f"wrote {raw} and {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
