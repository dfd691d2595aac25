"""The live view of a bench run: a rich progress bar with the current rate and latency."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from service.tools.bench_hist import Histogram
from service.tools.bench_plan import BenchConfig
from service.tools.bench_report import CPU_SATURATED, CPU_WAIT_SATURATED
from service.tools.bench_worker import Snapshot


class LiveView:
    """Adds up the workers' snapshots and redraws twice a second (only on a terminal)."""

    def __init__(self, config: BenchConfig, console: Console) -> None:
        self.config = config
        self.snapshots: dict[int, Snapshot] = {}
        self._latency = Histogram()
        self._last_tick = 0.0
        self._started: float | None = None
        self.progress = Progress(
            TextColumn("[bold]{task.description:<8}"),
            BarColumn(bar_width=16),
            TimeElapsedColumn(),
            TextColumn("{task.fields[stats]}"),
            console=console,
            disable=not console.is_terminal,
        )
        total = config.messages if config.messages is not None else config.duration
        self.task: TaskID = self.progress.add_task("connect", total=total, stats="")

    def __enter__(self) -> LiveView:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self) -> None:
        self._started = time.monotonic()
        self.progress.update(self.task, description="run")

    def add(self, worker: int, snapshot: Snapshot) -> None:
        self.snapshots[worker] = snapshot
        self._latency.merge(snapshot.latency)

    def tick(self) -> None:
        """Redraws with the workers' latest rates and the latency seen since the last tick."""
        now = time.monotonic()
        if self._started is None or now - self._last_tick < 0.5:
            return
        self._last_tick = now
        snaps = self.snapshots.values()
        if self.config.messages is not None:
            completed = float(sum(s.sent for s in snaps))
        else:
            assert self.config.duration is not None
            completed = min(now - self._started, self.config.duration)
            if completed >= self.config.duration:
                self.progress.update(self.task, description="drain")
        cpu = max((s.cpu for s in snaps), default=0.0)
        cpu_wait = max((s.cpu_wait for s in snaps), default=0.0)
        lat = self._latency
        stats = (
            f"{sum(s.rate for s in snaps):>7,.0f} msg/s "
            f"p50 {lat.quantile(0.5) * 1e3:.2f} p99 {lat.quantile(0.99) * 1e3:.2f} ms "
            f"{sum(s.open_connections for s in snaps)} open "
            f"{sum(s.errors for s in snaps)} err cpu {cpu:.0%}"
        )
        if cpu >= CPU_SATURATED:
            stats += " [yellow]client saturated[/]"
        elif cpu_wait >= CPU_WAIT_SATURATED:
            stats += f" [yellow]waits {cpu_wait:.0%} for a CPU[/]"
        self._latency = Histogram()
        self.progress.update(self.task, completed=completed, stats=stats)
