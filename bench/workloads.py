"""The workloads of issues 7 and 14 (W1-W5, metrics on/off, the client cross-check, open-loop
latency) as lists of rounds.

Each workload runs its targets in alternating rounds (round r starts at target r, so a drift
in the machine's load spreads over all targets) and returns one record per measurement.
A target that cannot run here yields a record that says why, never a number.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.harness import BenchError, QuietGate, Server, client_argv, drive, running
from bench.stats import PROXY_LEVEL, PROXY_SATURATION
from bench.targets import (
    ECHO_ROUTES,
    Target,
    check_config,
    echo_targets,
    metrics_switch,
    node_peer,
    python_peer,
    wsrelay,
    wsrelay_env,
)


@dataclass(frozen=True)
class Plan:
    """How long and how often: `full` for RESULTS.md, `quick` to check the harness."""

    name: str
    rounds: int
    warmup: float
    duration: float
    idle_sizes: tuple[int, ...]
    idle_hold: float
    idle_rounds: int
    receivers: int
    logdir: Path
    keep: frozenset[str] = frozenset()  # target names to run; empty runs all
    gate: QuietGate = field(default_factory=lambda: QuietGate(0, 0))

    @classmethod
    def full(cls, logdir: Path) -> Plan:
        return cls(
            "full", rounds=3, warmup=1.0, duration=3.5, idle_sizes=(5000, 10000), idle_hold=4.0,
            idle_rounds=1, receivers=1000, logdir=logdir, gate=QuietGate(per_wait=5, budget=60),
        )  # fmt: skip

    @classmethod
    def quick(cls, logdir: Path) -> Plan:
        return cls(
            "quick", rounds=1, warmup=0.5, duration=1.5, idle_sizes=(1000,), idle_hold=3.5,
            idle_rounds=1, receivers=300, logdir=logdir, gate=QuietGate(per_wait=2, budget=15),
        )  # fmt: skip

    @classmethod
    def smoke(cls, logdir: Path) -> Plan:
        return cls(
            "smoke", rounds=1, warmup=0.2, duration=0.5, idle_sizes=(50,), idle_hold=0.5,
            idle_rounds=1, receivers=20, logdir=logdir,
        )  # fmt: skip


Record = dict[str, Any]
W3_PING_INTERVAL = 3  # seconds: several keepalive rounds fall inside the hold of W3


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def skip(workload: str, target: str, label: str, reason: str, **meta: Any) -> Record:
    """The record of a measurement that cannot be taken here: a reason, never a number."""
    log(f"  {workload:<3}    {target:<16} skipped: {reason}")
    return {"workload": workload, "target": target, "label": label, "skipped": reason, **meta}


def rotated(items: list[Target], r: int) -> list[Target]:
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def measure(
    workload: str,
    target: Target,
    r: int,
    once: Callable[[Server], Record],
    plan: Plan,
    **meta: Any,
) -> Record:
    """Start `target`, run `once` against it, and label the outcome (or the failure)."""
    base: Record = {
        "workload": workload,
        "target": target.name,
        "label": target.label,
        "round": r,
        "keepalive": target.keepalive,
        **meta,
    }
    if target.missing:
        return {**base, "skipped": target.missing}
    started = time.monotonic()
    try:
        with running(target, plan.logdir) as server:
            waited = plan.gate.wait()
            rec = {**base, **once(server), "waited_for_quiet_s": waited}
    except (BenchError, OSError) as exc:
        rec = {**base, "error": str(exc)}
    rec["wall_s"] = round(time.monotonic() - started, 2)
    _derive(rec)
    if "held" not in rec:  # an idle pass is logged per step by per_step()
        log(f"  {workload:<3} r{r} {target.name:<16} " + _brief(rec))
    return rec


def _derive(rec: Record) -> None:
    if rec.get("window_s") and "client_cpu_s" in rec and "core1_busy_util" in rec:
        client = rec["client_cpu_s"] / rec["window_s"]
        rec["core1_other_util"] = max(0.0, rec["core1_busy_util"] - client)
    if rec.get("server_cpu_s"):
        rec["msgs_per_cpu_s"] = rec["msgs"] / rec["server_cpu_s"] if "msgs" in rec else None
    if "rss_after" in rec and rec.get("conns"):
        rec["kib_per_conn"] = (rec["rss_after"] - rec["rss_before"]) / rec["conns"] / 1024


def _brief(rec: Record) -> str:
    if "skipped" in rec or "error" in rec:
        return rec.get("skipped") or f"ERROR {rec['error']}"
    if "kib_per_conn" in rec:
        pings = rec.get("pings_answered_while_held")
        return (
            f"{rec['conns']} conns {rec['kib_per_conn']:.1f} KiB/conn pings={pings} "
            f"idle server CPU {rec['server_util']:.1%} connect {rec['connect_s']:.1f} s"
        )
    return (
        f"{rec['msgs_per_s']:>9.0f} msg/s  {rec.get('msgs_per_cpu_s') or 0:>9.0f} msg/cpu-s  "
        f"server {rec['server_util']:.0%} client {rec['client_cpu_s'] / rec['window_s']:.0%} "
        f"other@core0 {rec['core0_other_util']:.0%} p99 {rec['p99_ms']:.2f} ms"
        + (f" p99.9 {rec['p999_ms']:.2f} ms" if rec.get("p999_ms") is not None else "")
    )


def echo_once(
    plan: Plan, size: int, kind: str, client: str = "picows", path: str = "/echo"
) -> Callable[[Server], Record]:
    def once(server: Server) -> Record:
        mode = "tcp" if server.target.protocol == "tcp" else "echo"
        argv = client_argv(
            "node" if client == "node" else "picows",
            mode,
            server.target.url(server.port, path),
            conns=100,
            size=size,
            type=kind,
            warmup=plan.warmup,
            duration=plan.duration,
        )
        return drive([server], argv, timeout=plan.warmup + plan.duration + 60)

    return once


def rounds(
    workload: str,
    targets: list[Target],
    plan: Plan,
    once: Callable[[Server], Record],
    n: int | None = None,
    **meta: Any,
) -> Iterator[Record]:
    if plan.keep:
        targets = [t for t in targets if t.name in plan.keep]
    for r in range(n or plan.rounds):
        for target in rotated(targets, r):
            yield measure(workload, target, r, once, plan, **meta)


def w1(plan: Plan) -> Iterator[Record]:
    """W1: 100 connections, closed-loop round trips of 32 B text."""
    yield from rounds("W1", echo_targets(), plan, echo_once(plan, 32, "text"), client="picows")


def w2(plan: Plan) -> Iterator[Record]:
    """W2: 100 connections, closed-loop round trips of 16 KiB binary."""
    yield from rounds("W2", echo_targets(), plan, echo_once(plan, 16384, "binary"), client="picows")


def cross_check(plan: Plan) -> Iterator[Record]:
    """W1 again with the Node `ws` client: the same server ratios from a second client."""
    chosen = [t for t in echo_targets() if t.name in ("wsrelay", "aiohttp")]
    if node_peer().missing:
        for t in chosen:
            yield skip("X", t.name, t.label, node_peer().missing or "", client="node-ws")
        return
    yield from rounds(
        "X",
        chosen,
        plan,
        echo_once(plan, 32, "text", client="node"),
        n=max(1, plan.rounds - 1),
        client="node-ws",
    )


def w3(plan: Plan) -> Iterator[Record]:
    """W3: RSS growth per idle connection, keepalive as each server ships it (wsrelay: on)."""
    names = ("aiohttp", "websockets", "node-ws", "picows", "starlette")
    targets = [wsrelay("wsrelay (pings every 3 s)", ping_interval=W3_PING_INTERVAL)]
    targets += [t for t in echo_targets() if t.name in names]
    sizes = plan.idle_sizes

    def once(server: Server) -> Record:
        """One pass opens the connections step by step (5,000 then 10,000), RSS after each."""
        argv = client_argv(
            "picows",
            "idle",
            server.target.url(server.port),
            steps=",".join(map(str, sizes)),
            duration=plan.idle_hold,
        )
        return drive([server], argv, timeout=len(sizes) * (plan.idle_hold + 120), settle=1.0,
                     hold=plan.idle_hold, steps=len(sizes))  # fmt: skip

    for rec in rounds("W3", targets, plan, once, n=plan.idle_rounds, client="picows"):
        yield from per_step(rec, sizes)


def per_step(rec: Record, sizes: tuple[int, ...]) -> Iterator[Record]:
    """Split one idle pass into a record per connection count."""
    if "held" not in rec:  # skipped or failed: the same reason for every size
        for size in sizes:
            yield {**rec, "variant": size}
        return
    common = {k: v for k, v in rec.items() if k not in ("held", "steps")}
    for held, step in zip(rec["held"], rec["steps"], strict=False):
        out = {**common, **held, **step, "variant": step["conns"]}
        _derive(out)
        log(f"  W3  r{rec['round']} {rec['target']:<16} " + _brief(out))
        yield out


def w4(plan: Plan) -> Iterator[Record]:
    """W4: one sender, `receivers` room members; deliveries per second and per server CPU s."""
    targets = [
        wsrelay(),
        python_peer(
            "aiohttp-naive", "aiohttp naive send loop", "aiohttp_echo.py", module="aiohttp"
        ),
    ]

    def once(server: Server) -> Record:
        argv = client_argv(
            "picows",
            "broadcast",
            server.target.url(server.port, "/rooms/bench"),
            conns=plan.receivers,
            size=32,
            inflight=4,
            warmup=plan.warmup,
            duration=plan.duration,
        )
        return drive([server], argv, timeout=plan.warmup + plan.duration + 90)

    yield from rounds("W4", targets, plan, once, variant=plan.receivers, client="picows")


def metrics_on_off(plan: Plan) -> Iterator[Record]:
    """wsrelay W1 with metrics on and off, when wsrelay has a setting that turns them off."""
    switch = metrics_switch()
    on = wsrelay("wsrelay, metrics on")
    if switch is None:
        reason = (
            "no setting turns wsrelay's metrics off (tried "
            + ", ".join(next(iter(c)) for c in _candidates())
            + ")"
        )
        yield skip("M", "wsrelay-metrics-off", "wsrelay, metrics off", on.missing or reason)
        return
    off = wsrelay("wsrelay, metrics off", extra_env=switch)
    off.name = "wsrelay-metrics-off"
    yield from rounds("M", [on, off], plan, echo_once(plan, 32, "text"), client="picows")


def _candidates() -> tuple[dict[str, str], ...]:
    from bench.targets import METRICS_OFF_CANDIDATES

    return METRICS_OFF_CANDIDATES


def w5(plan: Plan) -> Iterator[Record]:
    """W5: client -> wsrelay proxy route -> bare aiohttp echo upstream, vs client -> that echo."""
    upstream = echo_upstream()
    probe = wsrelay()
    if probe.missing:
        yield skip("W5", "wsrelay-proxy", "through wsrelay proxy", probe.missing)
        return
    ok, out = check_config(_proxy_env(1, 2))
    reason = None if ok else "wsrelay refuses a proxy route: " + out[-300:]
    if reason is None:
        probe_rec = _proxy_round(replace(plan, warmup=0.1, duration=0.3), upstream, -1)
        if "error" in probe_rec:
            reason = "wsrelay does not serve a proxy route: " + probe_rec["error"]
    if reason is not None:
        yield skip("W5", "wsrelay-proxy", "through wsrelay proxy", "not available yet: " + reason)
        return
    echo = echo_once(plan, 32, "text")
    for r in range(plan.rounds):
        order = ["direct", "proxy"] if r % 2 == 0 else ["proxy", "direct"]
        for which in order:
            if which == "direct":
                yield measure("W5", upstream, r, echo, plan, client="picows")
                continue
            yield _proxy_round(plan, upstream, r)


def _proxy_env(port: int, upstream_port: int) -> dict[str, str]:
    routes: list[dict[str, object]] = [
        *ECHO_ROUTES,
        {"path": "/proxy", "mode": "proxy", "upstream": "echo"},
    ]
    env = wsrelay_env(port, routes)
    env["WSRELAY_UPSTREAMS"] = json.dumps(
        {"echo": {"url": f"ws://127.0.0.1:{upstream_port}/echo", "max_connections": 200}}
    )
    return env


def echo_upstream() -> Target:
    """W5's upstream: the bare aiohttp echo, also the direct baseline."""
    return python_peer(
        "direct", "direct to the echo upstream (bare aiohttp)", "aiohttp_echo.py", module="aiohttp"
    )


def proxy_target(stack: ExitStack, logdir: Path) -> Target:
    """wsrelay with a `/proxy` route to an echo upstream that `stack` keeps running."""
    up = stack.enter_context(running(echo_upstream(), logdir))
    relay = wsrelay("through wsrelay proxy")
    relay.env = lambda port: _proxy_env(port, up.port)
    return relay


def _proxy_round(
    plan: Plan,
    upstream: Target,
    r: int,
    workload: str = "W5",
    mode: str = "echo",
    **meta: Any,
) -> Record:
    """The upstream echo and wsrelay both on the server core; the ratio uses wsrelay's CPU."""
    started = time.monotonic()
    base: Record = {
        "workload": workload,
        "target": "wsrelay-proxy",
        "label": "through wsrelay proxy",
        "round": r,
        "client": "picows",
        "keepalive": "on",
        **meta,
    }
    opts = {"rate": meta["rate"]} if "rate" in meta else {}
    try:
        with running(upstream, plan.logdir) as up:
            relay = wsrelay("through wsrelay proxy")
            relay.env = lambda port: _proxy_env(port, up.port)
            with running(relay, plan.logdir) as server:
                base["waited_for_quiet_s"] = plan.gate.wait()
                argv = client_argv(
                    "picows",
                    mode,
                    relay.url(server.port, "/proxy"),
                    conns=100,
                    size=32,
                    type="text",
                    warmup=plan.warmup,
                    duration=plan.duration,
                    **opts,
                )
                rec = {
                    **base,
                    **drive([server, up], argv, timeout=plan.warmup + plan.duration + 60),
                }
                rec["upstream_cpu_s"] = rec["extra_server_cpu_s"][0]
    except (BenchError, OSError) as exc:
        rec = {**base, "error": str(exc)}
    rec["wall_s"] = round(time.monotonic() - started, 2)
    _derive(rec)
    if r < 0:
        return rec  # the availability probe: not logged, not recorded
    if rec.get("msgs", 1) == 0 or rec.get("errors"):
        rec["error"] = rec.get("error") or f"proxy route gave {rec.get('errors')} errors"
    log(f"  {workload:<3} r{r} {'wsrelay-proxy':<16} " + _brief(rec))
    return rec


#: Open-loop loads of the latency workload, as shares of bare aiohttp's saturation rate.
LATENCY_LEVELS = (0.5, 0.8)


def open_once(plan: Plan, rate: float) -> Callable[[Server], Record]:
    def once(server: Server) -> Record:
        argv = client_argv(
            "picows",
            "open",
            server.target.url(server.port, "/echo"),
            conns=100,
            size=32,
            type="text",
            warmup=plan.warmup,
            duration=plan.duration,
            rate=rate,
        )
        return drive([server], argv, timeout=plan.warmup + plan.duration + 60)

    return once


def latency(plan: Plan) -> Iterator[Record]:
    """L: open-loop latency at 50% and 80% of bare aiohttp's saturation rate (32 B text)."""
    chosen = ("wsrelay", "aiohttp", "node-ws")
    targets = [t for t in echo_targets() if t.name in chosen]
    if plan.keep:
        targets = [t for t in targets if t.name in plan.keep]
    aiohttp = next(t for t in echo_targets() if t.name == "aiohttp")
    # Saturation: bare aiohttp's closed-loop msgs per CPU-second, i.e. its rate with a whole
    # core to itself (msgs/s would shrink with whatever else runs on the core meanwhile).
    sat = measure("L", aiohttp, 0, echo_once(plan, 32, "text"), plan, variant="saturation",
                  client="picows")  # fmt: skip
    yield sat
    saturation = sat.get("msgs_per_cpu_s")
    if not saturation:
        return
    upstream = echo_upstream()
    for level in LATENCY_LEVELS:
        rate = round(level * saturation)
        variant = f"{level:.0%}"
        names = [t.name for t in targets] + ["wsrelay-proxy"]
        for r in range(max(1, plan.rounds - 1)):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                if name == "wsrelay-proxy":
                    yield _proxy_round(plan, upstream, r, "L", "open", variant=variant, rate=rate)
                    continue
                target = next(t for t in targets if t.name == name)
                yield measure("L", target, r, open_once(plan, rate), plan, variant=variant,
                              rate=rate, client="picows")  # fmt: skip
    yield from _proxy_latency(plan, upstream)


def _proxy_latency(plan: Plan, upstream: Target) -> Iterator[Record]:
    """The proxy at 50% and 80% of its own capacity: it shares the server core with its
    upstream, so bare aiohttp's rates overload the pair; these are rates the pair can serve.
    Capacity is the pair's closed-loop msgs/s (not per CPU-second: the core is all it has)."""
    sat = _proxy_round(plan, upstream, 0, "L", "echo", variant=PROXY_SATURATION)
    yield sat
    capacity = sat.get("msgs_per_s")
    if not capacity:
        return
    for level in LATENCY_LEVELS:
        rate = round(level * capacity)
        for r in range(max(1, plan.rounds - 1)):
            yield _proxy_round(plan, upstream, r, "L", "open", variant=PROXY_LEVEL.format(level),
                               rate=rate)  # fmt: skip


WORKLOADS: dict[str, Callable[[Plan], Iterator[Record]]] = {
    "W1": w1,
    "W2": w2,
    "X": cross_check,
    "M": metrics_on_off,
    "W4": w4,
    "W5": w5,
    "W3": w3,
    "L": latency,
}
