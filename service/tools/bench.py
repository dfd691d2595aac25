"""Load generator for echo-style targets: open loop, live progress, a latency table.

`wsrelay bench URL` spreads connections over worker processes (default: one per core),
shows live progress on stderr, and ends with a table (or --json) of throughput, latency
percentiles, errors and close codes. With --rate the load is open loop: every message has a
due time fixed in advance and latency counts from it, so a slow server cannot hide by slowing
the client down. Without --rate each connection sends its next message when its echo is back.
With --receive it sends nothing and checks what a `stream` route pushes: loss, order and the
one-way delay from each message's `ts` (bench_stream.py).

Exit codes: 0 no errors, 1 errors (failed connections, lost replies, early closes),
2 bad options, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import signal
import sys
import time
from typing import Any

from rich.console import Console

from service.tools.bench_live import LiveView
from service.tools.bench_plan import BenchConfig, plan_workers
from service.tools.bench_report import render, summarize
from service.tools.bench_worker import WorkerResult, run_worker
from service.tools.target import add_target_arguments, target_from_args

#: Seconds between the go signal and the common start: time for every worker to see it.
START_DELAY = 0.25


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `wsrelay bench`."""
    add_target_arguments(parser)
    parser.add_argument("-c", "--connections", type=int, default=10, help="default 10")
    length = parser.add_mutually_exclusive_group()
    length.add_argument(
        "-d", "--duration", type=float, metavar="SECONDS", help="how long to send (default 10)"
    )
    length.add_argument(
        "-n", "--messages", type=int, help="how many messages to send in all, then stop"
    )
    parser.add_argument("--size", type=int, metavar="BYTES", help="default 32")
    parser.add_argument(
        "-r",
        "--rate",
        type=float,
        metavar="MSG_PER_S",
        help="messages per second over all connections, on a fixed schedule (open loop); "
        "without it, each connection waits for its echo before the next send",
    )
    parser.add_argument("--binary", action="store_true", help="binary frames instead of text")
    parser.add_argument(
        "--receive",
        action="store_true",
        help="receive only, from a stream route (its rate, size and count go in the URL): "
        "loss, order and one-way delay from each message's seq and ts; --duration caps the run",
    )
    parser.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="open connections evenly over this time, part of --duration (default: all first)",
    )
    parser.add_argument(
        "-w",
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (default: the core count)",
    )
    parser.add_argument(
        "--drain-timeout",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="wait this long for outstanding echoes at the end (default 5)",
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=10.0, metavar="SECONDS", help="default 10"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def main(args: argparse.Namespace) -> int:
    try:
        duration = args.duration
        if duration is None and args.messages is None:
            duration = 10.0
        if args.receive and (args.size is not None or args.binary):
            raise ValueError("--receive sends nothing: the stream's size and binary go in the URL")
        config = BenchConfig(
            target=target_from_args(args),
            connections=args.connections,
            duration=duration,
            messages=args.messages,
            size=32 if args.size is None else args.size,
            rate=args.rate,
            binary=args.binary,
            ramp=args.ramp,
            workers=args.workers,
            drain_timeout=args.drain_timeout,
            connect_timeout=args.connect_timeout,
            receive=args.receive,
        )
    except ValueError as exc:
        print(f"wsrelay bench: {exc}", file=sys.stderr)
        return 2
    results, interrupted, failures = run(config, Console(stderr=True))
    for failure in failures:
        print(f"wsrelay bench: {failure}", file=sys.stderr)
    if not results:
        return 1
    summary = summarize(config, results, interrupted)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        render(summary, Console())
    if interrupted:
        return 130
    return 1 if summary["errors"] or failures else 0


def run(config: BenchConfig, console: Console) -> tuple[list[WorkerResult], bool, list[str]]:
    """Starts the workers, shows progress until all are done; returns what they measured."""
    # fork starts a worker at once (no interpreter start, no imports: seconds on a busy machine);
    # nothing in this process runs threads or an event loop yet. Elsewhere spawn is the safe one.
    ctx = (
        multiprocessing.get_context("fork")
        if sys.platform == "linux"
        else multiprocessing.get_context("spawn")
    )
    events: multiprocessing.Queue[tuple[str, int, Any]] = ctx.Queue()
    go, stop = ctx.Event(), ctx.Event()
    start_at = ctx.Value("d", 0.0)
    plans = plan_workers(config)
    procs = [
        ctx.Process(
            target=run_worker, args=(p, events, go, start_at, stop), name=f"bench-{p.worker}"
        )
        for p in plans
    ]
    # Workers ignore Ctrl-C from their first instant (the parent asks them to stop instead).
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        for proc in procs:
            proc.start()
    finally:
        signal.signal(signal.SIGINT, previous)
    results: dict[int, WorkerResult] = {}
    failures: list[str] = []
    ready: set[int] = set()
    finished: set[int] = set()
    interrupted = False
    with LiveView(config, console) as view:
        while len(finished) < len(procs):
            try:
                kind, worker, payload = events.get(timeout=0.1)
            except queue.Empty:
                failures += _dead(procs, finished)
                if failures:
                    stop.set()
            except KeyboardInterrupt:
                if interrupted:
                    break
                interrupted = True
                stop.set()
                continue
            else:
                if kind == "ready":
                    ready.add(worker)
                    if len(ready) == len(procs):
                        start_at.value = time.time() + START_DELAY
                        go.set()
                        view.started()
                elif kind == "progress":
                    view.add(worker, payload)
                elif kind == "done":
                    results[worker] = payload
                    finished.add(worker)
                else:
                    finished.add(worker)
                    failures.append(f"worker {worker} failed: {payload}")
                    stop.set()
            view.tick()
    for proc in procs:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.terminate()
    return [results[w] for w in sorted(results)], interrupted, failures


def _dead(procs: list[Any], finished: set[int]) -> list[str]:
    """Workers that exited without a word (killed, out of memory); marks them finished."""
    dead = [i for i, p in enumerate(procs) if p.exitcode is not None and i not in finished]
    finished.update(dead)
    return [f"worker {i} exited with code {procs[i].exitcode} before reporting" for i in dead]
