"""`make soak`: the churn test's cycles, many more of them, with a report of how the server held.

    python -m tests.churn.soak --cycles 50000 --report test-artifacts/soak.md

Runs batches of cycles on echo, broadcast, proxy and feed (those that exist), and after each
batch records open file descriptors, RSS and the connection gauge once the server has settled.
Exits 1 if any cycle failed, a descriptor or connection was left behind, or RSS grew by more
than --rss-bound MiB after the first batch.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from service.modes import MODES
from tests.churn.churn import Snapshot, run_cycles, settle
from tests.support import Service

PING_INTERVAL = 1.0


def settings_for(upstream: Service) -> tuple[dict[str, Any], list[str]]:
    routes: list[dict[str, Any]] = [
        {"path": "/echo", "mode": "echo"},
        {"path": "/rooms/{room}", "mode": "broadcast", "echo_to_sender": True},
    ]
    paths = ["/echo", *(f"/rooms/soak-{n}" for n in range(5))]
    settings: dict[str, Any] = {
        "PING_INTERVAL": str(PING_INTERVAL),
        "PING_TIMEOUT": "10",
        "LOG_LEVEL": "warning",
    }
    if "proxy" in MODES:
        routes.append({"path": "/relay", "mode": "proxy", "upstream": "echo"})
        url = upstream.ws_url("/echo")
        settings["UPSTREAMS"] = {"echo": {"url": url, "ping_interval": PING_INTERVAL}}
        paths.append("/relay")
    if "feed" in MODES:  # one shared upstream connection: its keepalive stays the default
        routes.append({"path": "/feed", "mode": "feed", "upstream": "shared", "forward": True})
        settings.setdefault("UPSTREAMS", {})["shared"] = {"url": upstream.ws_url("/echo")}
        paths.append("/feed")
    settings["ROUTES"] = routes
    return settings, paths


def soak(cycles: int, batch: int, rss_bound: float) -> tuple[list[str], bool]:
    lines = [
        "# Soak report",
        "",
        f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}: {cycles} connect/echo/close "
        f"cycles in batches of {batch}, 25 at a time; endings clean 5 : abrupt 2 : mid-message 1 "
        f": mid-handshake 1. Readings after each batch once the server settled.",
        "",
        "| batch | cycles | seconds | errors | open fds | active | RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ok = True
    with Service({"ROUTES": [{"path": "/echo", "mode": "echo"}]}) as upstream:
        settings, paths = settings_for(upstream)
        lines.insert(3, f"Paths: {', '.join(paths)}.")
        with Service(settings) as service:
            first: Snapshot | None = None
            idle = Snapshot.of(service)
            done = 0
            kinds: Counter[str] = Counter()
            for number in range(1, cycles // batch + 1):
                stats = asyncio.run(run_cycles(service, paths, batch, seed=number))
                time.sleep(2 * PING_INTERVAL)
                now = asyncio.run(settle(service, idle))
                done += stats.cycles
                errors = sum(stats.errors.values())
                kinds.update(stats.errors)
                lines.append(
                    f"| {number} | {done} | {stats.seconds:.1f} | {errors} | {now.fds} | "
                    f"{now.active:.0f} | {now.rss / 2**20:.1f} |"
                )
                print(lines[-1], flush=True)
                ok &= errors == 0 and now.active == 0 and now.fds <= idle.fds
                first = first or now
            assert first is not None
            growth = (now.rss - first.rss) / 2**20
            ok &= growth < rss_bound
            lines += [
                "",
                f"RSS after the first batch {first.rss / 2**20:.1f} MiB, at the end "
                f"{now.rss / 2**20:.1f} MiB: {growth:+.1f} MiB (bound {rss_bound} MiB).",
                f"Open fds idle {idle.fds}, at the end {now.fds}.",
                f"Verdict: {'PASS' if ok else 'FAIL'}.",
            ]
            if kinds:
                lines += ["", "Failed cycles by kind:", ""]
                lines += [f"- {count} x {kind}" for kind, count in kinds.most_common(10)]
    return lines, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--rss-bound", type=float, default=16.0, help="MiB after batch 1")
    parser.add_argument("--report", type=Path, default=Path("test-artifacts/soak.md"))
    args = parser.parse_args(argv)
    lines, ok = soak(args.cycles, min(args.batch, args.cycles), args.rss_bound)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text("\n".join(lines) + "\n")
    print(f"report written to {args.report}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
