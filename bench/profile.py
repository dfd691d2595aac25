"""`python -m bench.profile`: sample wsrelay with py-spy while the W1 load runs against it.

Writes the collapsed stacks (flamegraph input) and a table of the top frames by own time and
by time including callees, so the hot path is optimised from a profile and not from guesses.
py-spy samples from outside the process (`--nonblocking`), so the server is not slowed by it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from bench.harness import client_argv, drive, running
from bench.targets import ROOT, echo_targets

OUT = ROOT / "bench" / "results"


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--type", choices=("text", "binary"), default="text")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--target", default="wsrelay", help="or a Python peer, e.g. aiohttp, to compare")
    args = p.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"profile-w1-{args.type}" + ("" if args.target == "wsrelay" else f"-{args.target}")
    raw = args.out / f"{stem}.collapsed.txt"
    target = next(t for t in echo_targets() if t.name == args.target)
    if target.missing:
        print(target.missing, file=sys.stderr)
        return 1
    with running(target, args.out / "logs") as server:
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
        threading.Event().wait(0.5)  # py-spy attached before the load starts
        argv = client_argv(
            "picows",
            "echo",
            server.target.url(server.port),
            conns=100,
            size=args.size,
            type=args.type,
            warmup=0.5,
            duration=args.duration,
        )
        report = drive([server], argv, timeout=args.duration + 60)
        spy_proc.wait(args.duration + 30)
    total, own, inclusive = top_frames(raw.read_text())
    text = (
        f"{target.label} under the W1 load ({args.size} B {args.type}, 100 connections): "
        f"{report['msgs_per_s']:,.0f} msgs/s, server CPU {report['server_util']:.0%} "
        "(profiled, so slower than unprofiled)\n\n" + render(total, own, inclusive)
    )
    md = args.out / f"{stem}.md"
    md.write_text(text)
    print(text)
    print(f"wrote {raw} and {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
