"""What 10,000 stream connections at 1 message/s cost the server, against as many idle ones.

    .venv/bin/python -m bench.stream_scale [--conns 10000] [--rate 1] [--window 20]

Two runs on a fresh server each (pinned to core 0; the picows client to core 1, as the
harness does): N idle connections on /echo (the baseline: what holding N WebSockets costs),
then N connections on /stream?rate=R. For each: the server's CPU over the window (from
/proc, user + system, as % of one core), its RSS at the end, and the number of asyncio tasks
in the server's loop (a probe task inside the server prints len(asyncio.all_tasks()) every
second; the probe is one of them). The client checks every stream message's seq (gaps,
order) and takes the one-way delay from its ts. One JSON line per run goes to --out.
Every loop is bounded: connects by a timeout, the window by --window.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

from bench.harness import CLIENT_CORE, SERVER_CORE, free_port, pinned
from bench.procstat import cpu_seconds, loadavg, rss_bytes

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


# -- the server: wsrelay serve with a task-count probe -------------------------------------------
def serve_with_probe() -> None:
    """`wsrelay serve` (uvloop), plus a task printing the loop's task count every second."""
    import uvloop

    from service.server import serve
    from service.settings import load_settings

    settings = load_settings()

    async def main() -> None:
        async def probe() -> None:
            while True:
                print(f"TASKS {len(asyncio.all_tasks())}", flush=True)
                await asyncio.sleep(1)

        prober = asyncio.ensure_future(probe())
        try:
            await serve(settings)
        finally:
            prober.cancel()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


# -- the client: picows connections that check seq and measure one-way delay ------------------
def run_client(url: str, conns: int, connect_timeout: float) -> None:
    import uvloop
    from picows import WSFrame, WSMsgType, WSTransport

    from bench.loadgen import Conn, close_all, emit, gather_bounded, ws_open

    class Tally:
        received = 0
        gaps = 0
        delays_ns: list[int] = []

    class StreamConn(Conn):
        def __init__(self) -> None:
            super().__init__()
            self.expected = 0

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            kind = frame.msg_type
            if kind is WSMsgType.PING:
                transport.send_pong(frame.get_payload_as_bytes())
                return
            if kind is not WSMsgType.TEXT:
                return
            data = frame.get_payload_as_bytes()
            fields = data[1:].split(b",", 1)
            seq = int(fields[0].split(b":")[1])
            ts = int(fields[1].split(b":")[1].rstrip(b" }"))
            if seq != self.expected:
                Tally.gaps += 1
            self.expected = seq + 1
            Tally.received += 1
            if len(Tally.delays_ns) < 1_000_000:
                Tally.delays_ns.append(time.time_ns() - ts)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        opened = await asyncio.wait_for(
            gather_bounded([partial(ws_open, url, StreamConn, i) for i in range(conns)], 200),
            connect_timeout,
        )
        emit(f"CONNECTED {time.perf_counter() - started:.1f}")
        marks: dict[str, tuple[int, float]] = {}
        while True:
            line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), 600)
            command = line.strip()
            marks[command] = (Tally.received, time.perf_counter())
            if command in ("start", ""):
                Tally.delays_ns.clear()
                Tally.gaps = 0
            if command in ("stop", ""):
                break
        delays = sorted(Tally.delays_ns)
        (r0, t0), (r1, t1) = marks.get("start", (0, 0.0)), marks["stop"]

        def pct(q: float) -> float | None:
            return round(delays[int(q * (len(delays) - 1))] / 1e6, 2) if delays else None

        emit(
            json.dumps(
                {
                    "received_per_s": round((r1 - r0) / (t1 - t0), 1) if t1 > t0 else None,
                    "seq_gaps": Tally.gaps,
                    "one_way_p50_ms": pct(0.5),
                    "one_way_p90_ms": pct(0.9),
                    "one_way_p99_ms": pct(0.99),
                    "one_way_max_ms": pct(1.0),
                    "client_cpu_s": round(time.process_time(), 2),
                }
            )
        )
        await close_all(opened)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())


# -- the driver ------------------------------------------------------------------------------------
class Lines:
    """A child's stdout, read on a thread: the last TASKS value and every other line."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.tasks: int | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._cond:
                if line.startswith("TASKS "):
                    self.tasks = int(line.split()[1])
                else:
                    self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_for(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        self.lines.remove(line)
                        return line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {prefix!r} line in {timeout} s")
                self._cond.wait(left)


def measure(path: str, conns: int, window: float, warmup: float) -> dict[str, Any]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSRELAY_")}
    env.update(
        WSRELAY_HOST="127.0.0.1",
        WSRELAY_PORT=str(port),
        WSRELAY_MAX_CONNECTIONS=str(conns + 100),
        WSRELAY_LOG_LEVEL="warning",  # no connect/close line per connection
        PYTHONUNBUFFERED="1",
    )
    server = subprocess.Popen(
        pinned(SERVER_CORE, [PY, "-m", "bench.stream_scale", "server"]),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    client: subprocess.Popen[str] | None = None
    try:
        out = Lines(server)
        out.wait_for("wsrelay serving", 30)
        client = subprocess.Popen(
            pinned(
                CLIENT_CORE,
                [
                    PY,
                    "-m",
                    "bench.stream_scale",
                    "client",
                    "--conns",
                    str(conns),
                    "--url",
                    f"ws://127.0.0.1:{port}{path}",
                ],
            ),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        replies = Lines(client)
        connect_s = float(replies.wait_for("CONNECTED", 300).split()[1])
        time.sleep(warmup)
        assert client.stdin is not None
        client.stdin.write("start\n")
        client.stdin.flush()
        cpu0, t0 = cpu_seconds(server.pid), time.perf_counter()
        time.sleep(window)
        cpu1, t1 = cpu_seconds(server.pid), time.perf_counter()
        rss = rss_bytes(server.pid)
        tasks = out.tasks
        client.stdin.write("stop\n")
        client.stdin.flush()
        report = json.loads(replies.wait_for("{", 60))
        return {
            "path": path,
            "conns": conns,
            "connect_s": connect_s,
            "window_s": round(t1 - t0, 2),
            "server_cpu_pct": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
            "server_rss_mib": round(rss / 2**20, 1),
            "server_tasks": tasks,
            "loadavg_1m": round(loadavg()[0], 2),
            **report,
        }
    finally:
        for proc in (client, server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_scale", description=__doc__)
    parser.add_argument("role", nargs="?", default="run", choices=("run", "server", "client"))
    parser.add_argument("--conns", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=1.0)
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--url", default="")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="PATH",
        help="another path to measure after the two, e.g. '/stream?rate=1&delay=10ms'",
    )
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "stream_scale.jsonl"))
    args = parser.parse_args(argv)
    if args.role == "server":
        serve_with_probe()
        return
    if args.role == "client":
        run_client(args.url, args.conns, connect_timeout=300)
        return
    paths = ["/echo", f"/stream?rate={args.rate:g}", *args.also]
    runs = [measure(path, args.conns, args.window, args.warmup) for path in paths]
    with open(args.out, "a") as out:
        for run in runs:
            run["at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            out.write(json.dumps(run) + "\n")
            print(json.dumps(run))


if __name__ == "__main__":
    main()
