"""One measurement: start a server on core 0, drive it from a client on core 1, read /proc.

The client prints MEASURE_START / MEASURE_END around its window; the harness samples the
server's CPU seconds and each core's busy time on those lines, so server CPU, client CPU and
the load other processes put on the cores all cover the same window.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procstat import CoreTimes, cpu_seconds, rss_bytes
from bench.targets import NODE_DIR, PY, ROOT, Target

SERVER_CORE = 0
CLIENT_CORE = 1
LOADGEN = str(ROOT / "bench" / "loadgen.py")
# Server and client run at a slightly raised priority when we may (root), so the other work on
# this shared machine takes less of their cores; `BENCH_NICE=0` turns it off.
NICE = int(os.environ.get("BENCH_NICE", "-5"))


def pinned(core: int, argv: list[str]) -> list[str]:
    """`argv` on one core, reniced when allowed; taskset and nice exec, so the pid is argv's."""
    prio = ["nice", "-n", str(NICE)] if NICE and (NICE > 0 or os.geteuid() == 0) else []
    return ["taskset", "-c", str(core), *prio, *argv]


class QuietGate:
    """Before a measurement, wait (bounded) until other processes leave both cores mostly idle.

    Other agents share this machine; a window that starts while they run a test suite is
    noisier. Each wait is capped at `per_wait` s and all waits of a run at `budget` s.
    """

    def __init__(self, per_wait: float, budget: float, threshold: float = 0.25) -> None:
        self.per_wait = per_wait
        self.budget = budget
        self.threshold = threshold

    def wait(self) -> float:
        waited = 0.0
        while waited < min(self.per_wait, self.budget):
            before = CoreTimes.read()
            time.sleep(0.5)
            waited += 0.5
            after = CoreTimes.read()
            busy = max(
                after.busy_seconds_since(before, c) / 0.5 for c in (SERVER_CORE, CLIENT_CORE)
            )
            if busy < self.threshold:
                break
        self.budget = max(0.0, self.budget - waited)
        return waited


class BenchError(RuntimeError):
    """A measurement that could not be taken (server did not start, client failed)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"server exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"server not listening on {port} after {timeout:.0f} s")


@dataclass
class Server:
    target: Target
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@contextmanager
def running(target: Target, logdir: Path, listen_timeout: float = 30.0) -> Iterator[Server]:
    """The target listening on a free loopback port, pinned to the server core."""
    port = free_port()
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{target.name}-{port}.log"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("WSRELAY_")}
    env = {**inherited, **target.env(port)}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            pinned(SERVER_CORE, target.argv(port)),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    server = Server(target, port, proc, log)
    try:
        try:
            wait_listening(port, proc, listen_timeout)
        except BenchError as exc:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise BenchError(f"{exc}: {' '.join(tail)[:300]}") from None
        yield server
    finally:
        server.stop()


def client_argv(kind: str, mode: str, url: str, **opts: Any) -> list[str]:
    """The load client's command line, pinned to the client core."""
    base = ["node", str(NODE_DIR / "client.js")] if kind == "node" else [PY, LOADGEN, mode]
    # `--name value` pairs: both the argparse client and node's tiny parser read them
    flags = [x for k, v in opts.items() for x in (f"--{k.replace('_', '-')}", str(v))]
    return pinned(CLIENT_CORE, [*base, "--url", url, *flags])


def drive(
    servers: list[Server], argv: list[str], timeout: float, **commands: float
) -> dict[str, Any]:
    """Run one client against `servers`; return its report plus what /proc says of the window.

    `commands` are the idle-mode steps: on BASELINE wait `settle` s, sample RSS, send `go`;
    on each CONNECTED wait `hold` s, sample CPU and RSS, send `next` (`stop` after `steps`).
    """
    proc = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True, bufsize=1
    )
    assert proc.stdout is not None
    assert proc.stdin is not None
    watchdog = threading.Timer(timeout, proc.kill)  # a silent, hung client cannot stall the run
    watchdog.start()
    sample: dict[str, Any] = {}
    report: dict[str, Any] | None = None
    try:
        for line in proc.stdout:
            word = line.strip()
            if word == "MEASURE_START":
                sample["start"] = _snapshot(servers)
            elif word == "MEASURE_END":
                sample["end"] = _snapshot(servers)
            elif word == "BASELINE":
                time.sleep(commands.get("settle", 1.0))
                sample["rss_before"] = [rss_bytes(s.pid) for s in servers]
                proc.stdin.write("go\n")
            elif word == "CONNECTED":
                sample["start"] = _snapshot(servers)
                time.sleep(commands.get("hold", 3.0))
                sample["end"] = _snapshot(servers)
                held = _window(servers, {"start": sample["start"], "end": sample["end"]})
                held["rss_after"] = rss_bytes(servers[0].pid)
                sample.setdefault("held", []).append(held)
                more = len(sample["held"]) < commands.get("steps", 1)
                proc.stdin.write("next\n" if more else "stop\n")
            elif word.startswith("{"):
                report = json.loads(word)
        proc.wait(timeout)
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if report is None or proc.returncode != 0:
        raise BenchError(
            f"client exited {proc.returncode} without a report (timeout {timeout:.0f} s)"
        )
    if "start" not in sample or "end" not in sample:
        raise BenchError("client never opened its measurement window")
    return {**report, **_window(servers, sample)}


def _snapshot(servers: list[Server]) -> dict[str, Any]:
    return {
        "t": time.perf_counter(),
        "cpu": [cpu_seconds(s.pid) for s in servers],
        "cores": CoreTimes.read(),
    }


def _window(servers: list[Server], sample: dict[str, Any]) -> dict[str, Any]:
    start, end = sample["start"], sample["end"]
    wall = end["t"] - start["t"]
    cpu = [b - a for a, b in zip(start["cpu"], end["cpu"], strict=True)]
    core0 = end["cores"].busy_seconds_since(start["cores"], SERVER_CORE)
    core1 = end["cores"].busy_seconds_since(start["cores"], CLIENT_CORE)
    out: dict[str, Any] = {
        "window_s": wall,
        "server_cpu_s": cpu[0],
        "server_util": cpu[0] / wall if wall else 0.0,
        # Busy time on the server core that is not the servers' own: other agents, kernel work.
        "core0_other_util": max(0.0, core0 - sum(cpu)) / wall if wall else 0.0,
        "core1_busy_util": core1 / wall if wall else 0.0,
        "extra_server_cpu_s": cpu[1:],
    }
    if "rss_before" in sample:
        out["rss_before"] = sample["rss_before"][0]
        out["held"] = sample.get("held", [])
    return out
