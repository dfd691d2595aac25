"""What a bench run does, decided before any socket opens: pure and unit-tested.

The load is split over worker processes by connection; each connection gets a fixed send
schedule (open loop): message k of a connection is due at `start + phase + k * interval`
after the common start, whatever happened to the messages before it. Latency is measured from
that due time, so a stalled server or client shows up as latency instead of silently lowering
the offered load (no coordinated omission).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from service.tools.target import Target

#: Payloads of at least this many bytes carry their sequence number, so echoes are verified.
SEQ_DIGITS = 16


@dataclass(frozen=True)
class BenchConfig:
    target: Target
    connections: int = 10
    duration: float | None = 10.0
    messages: int | None = None
    size: int = 32
    rate: float | None = None
    binary: bool = False
    ramp: float = 0.0
    workers: int = 1
    drain_timeout: float = 5.0
    connect_timeout: float = 10.0
    #: Receive only (a stream route): send nothing, check what the server pushes.
    receive: bool = False

    def __post_init__(self) -> None:
        problems = []
        if self.connections < 1:
            problems.append("--connections must be at least 1")
        if (self.duration is None) == (self.messages is None):
            problems.append("give exactly one of --duration and --messages")
        if self.duration is not None and self.duration <= 0:
            problems.append("--duration must be above 0")
        if self.messages is not None and self.messages < 1:
            problems.append("--messages must be at least 1")
        if self.size < 1:
            problems.append("--size must be at least 1 byte")
        if self.rate is not None and self.rate <= 0:
            problems.append("--rate must be above 0 (leave it out for closed loop)")
        if self.ramp < 0:
            problems.append("--ramp must not be negative")
        if self.duration is not None and self.ramp >= self.duration:
            problems.append("--ramp must be shorter than --duration")
        if self.workers < 1:
            problems.append("--workers must be at least 1")
        if self.receive and (self.rate is not None or self.messages is not None):
            problems.append(
                "--receive sends nothing: set the stream's rate and count in the URL "
                "(e.g. ?rate=100&count=500), and how long to listen with --duration"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def open_loop(self) -> bool:
        return self.rate is not None

    @property
    def interval(self) -> float:
        """Seconds between two sends of one connection (open loop only)."""
        assert self.rate is not None
        return self.connections / self.rate


@dataclass(frozen=True)
class ConnectionPlan:
    index: int
    #: Seconds after the common start at which this connection opens (its place in the ramp).
    start: float
    #: Seconds after `start` of its first send: spreads connections evenly over one interval.
    phase: float
    #: How many messages it sends in --messages mode; None in --duration mode.
    quota: int | None

    def due(self, k: int, interval: float) -> float:
        """When message k is due, in seconds after the common start."""
        return self.start + self.phase + k * interval


@dataclass(frozen=True)
class WorkerPlan:
    worker: int
    config: BenchConfig
    connections: tuple[ConnectionPlan, ...]


def plan_workers(config: BenchConfig) -> list[WorkerPlan]:
    """Deals connections round-robin to min(workers, connections) workers."""
    n = config.connections
    interval = config.interval if config.open_loop else 0.0
    plans: list[list[ConnectionPlan]] = [[] for _ in range(min(config.workers, n))]
    for i in range(n):
        quota = None
        if config.messages is not None:
            quota = config.messages // n + (1 if i < config.messages % n else 0)
        start = config.ramp * i / n
        plans[i % len(plans)].append(ConnectionPlan(i, start, interval * i / n, quota))
    return [WorkerPlan(w, config, tuple(conns)) for w, conns in enumerate(plans)]


def scheduled_messages(config: BenchConfig) -> int:
    """How many messages an open-loop run is scheduled to send in all."""
    if config.messages is not None:
        return config.messages
    assert config.duration is not None
    interval = config.interval
    total = 0
    for plan in plan_workers(config):
        for conn in plan.connections:
            first = conn.start + conn.phase
            if first < config.duration:
                total += math.ceil((config.duration - first) / interval)
    return total


class Payloads:
    """Message k of a connection: its sequence number in hex, then filler up to the size."""

    def __init__(self, size: int, binary: bool) -> None:
        self.size = size
        self.binary = binary
        self._digits = min(SEQ_DIGITS, size)
        self._filler = "x" * (size - self._digits)

    def make(self, k: int) -> str | bytes:
        text = f"{k:016x}"[-self._digits :] + self._filler
        return text.encode("ascii") if self.binary else text

    def seq_of(self, data: str | bytes) -> int | None:
        """The k that `data` carries, when messages are long enough to carry all of it."""
        if self._digits < SEQ_DIGITS:
            return None
        try:
            return int(data[:SEQ_DIGITS], 16)
        except ValueError:
            return None

    def matches(self, k: int, data: str | bytes) -> bool:
        """True when `data` is exactly what make(k) sent."""
        return data == self.make(k)
