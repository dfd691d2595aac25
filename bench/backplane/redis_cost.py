"""Redis CPU per message in and per delivery out: `python -m bench.backplane.redis_cost`.

No wsrelay here: `redis-benchmark` publishes N messages of the envelope's size (pipelined, as
a replica's writer does) to one channel that S raw subscribers read (sockets that only count
bytes, so they are never the bottleneck), for S in 1, 3, 8 and 24. The CPU of the Redis
process (from /proc) over the run gives its cost per message; a least-squares line over S
splits it into a part per PUBLISH in and a part per delivery out, which is what the capacity
model (docs/scaling.md) needs. Done for classic PUBLISH on a standalone redis-server and for
SPUBLISH on a master of a 3-master cluster with one replica (the master also forwards each
message to its replica; the replica's CPU is shown too). Results: redis_cost.json beside this
file (and printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from bench.backplane.__main__ import HERE, cpu_seconds, machine_busy_seconds
from bench.backplane.cluster import loadavg
from tests.backplane.clusterproc import Cluster
from tests.backplane.redisproc import RedisServer

#: The envelope's 9 bytes and a 64-byte payload, as in the end-to-end benchmark.
PAYLOAD = b"x" * (9 + 64)
SUBSCRIBERS = (1, 3, 8, 24)


class Counter(asyncio.Protocol):
    """A subscriber that counts the bytes Redis pushes to it."""

    def __init__(self) -> None:
        self.received = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.received += len(data)


def resp(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%b\r\n" % (len(p), p) for p in parts)


async def subscribe(
    port: int, sharded: bool, channel: bytes, subscribers: int
) -> tuple[list[Counter], list[int], int]:
    """S counting subscribers of `channel`; their byte counts once subscribed; bytes a push."""
    loop = asyncio.get_running_loop()
    verb, push = (b"SSUBSCRIBE", b"smessage") if sharded else (b"SUBSCRIBE", b"message")
    counters = []
    for _ in range(subscribers):
        _, counter = await loop.create_connection(Counter, "127.0.0.1", port)
        assert counter.transport is not None
        counter.transport.write(resp(verb, channel))
        counters.append(counter)
    await asyncio.sleep(0.3)  # the confirmations are in
    return counters, [counter.received for counter in counters], len(resp(push, channel, PAYLOAD))


async def measure(
    pids: dict[str, int], port: int, sharded: bool, channel: bytes, subscribers: int, n: int
) -> dict[str, Any]:
    counters, base, per_message = await subscribe(port, sharded, channel, subscribers)
    before = {label: cpu_seconds(pid) for label, pid in pids.items()}
    busy = machine_busy_seconds()
    started = time.perf_counter()
    command = "SPUBLISH" if sharded else "PUBLISH"
    await asyncio.to_thread(
        subprocess.run,
        [
            *("redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-q"),
            *("-c", "2", "-P", "64", "-n", str(n)),
            *(command, channel.decode(), PAYLOAD.decode()),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    want = [start + n * per_message for start in base]
    deadline = time.monotonic() + 60
    while any(c.received < w for c, w in zip(counters, want, strict=True)):
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - started
    cpu = {label: cpu_seconds(pid) - before[label] for label, pid in pids.items()}
    busy = machine_busy_seconds() - busy
    delivered = sum((c.received - b) // per_message for c, b in zip(counters, base, strict=True))
    for counter in counters:
        assert counter.transport is not None
        counter.transport.close()
    return {
        "subscribers": subscribers,
        "messages": n,
        "deliveries": delivered,
        "complete": delivered == n * subscribers,
        "seconds": round(seconds, 3),
        "msgs_per_s": round(n / seconds),
        "cpu_seconds": {label: round(value, 3) for label, value in cpu.items()},
        "us_per_msg": {label: round(value / n * 1e6, 2) for label, value in cpu.items()},
        "machine_busy_seconds": round(busy, 2),
    }


def fit(runs: list[dict[str, Any]], label: str) -> dict[str, float]:
    """Least squares: Redis µs per message = per_in + S * per_delivery."""
    xs = [run["subscribers"] for run in runs]
    ys = [run["us_per_msg"][label] for run in runs]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return {"us_per_publish": round(mean_y - slope * mean_x, 2), "us_per_delivery": round(slope, 3)}


async def series(
    pids: dict[str, int], port: int, sharded: bool, channel: bytes, n: int
) -> dict[str, Any]:
    runs = [await measure(pids, port, sharded, channel, s, n) for s in SUBSCRIBERS]
    for run in runs:
        print(json.dumps(run), flush=True)
    return {"runs": runs, "fit": {label: fit(runs, label) for label in pids}}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backplane.redis_cost")
    parser.add_argument("--messages", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "payload_bytes": len(PAYLOAD),
        "loadavg_before": loadavg(),
    }
    with RedisServer() as redis:
        assert redis.process is not None
        results["standalone PUBLISH"] = asyncio.run(
            series({"redis": redis.process.pid}, redis.port, False, b"bench", args.messages)
        )
    with Cluster() as cluster:
        master = cluster.node(sorted(cluster.masters())[0])
        replica = next(node for node in cluster.nodes if _replica_of(node, master))
        channel = b"bench{%d}" % _tag_on(cluster, master)
        assert master.process is not None
        assert replica.process is not None
        pids = {"master": master.process.pid, "its replica": replica.process.pid}
        results["cluster master SPUBLISH"] = asyncio.run(
            series(pids, master.port, True, channel, args.messages)
        )
    results["loadavg_after"] = loadavg()
    results["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    (HERE / "redis_cost.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({k: v["fit"] for k, v in results.items() if isinstance(v, dict)}))
    return 0


def _replica_of(node: Any, master: Any) -> bool:
    info = node.call("INFO", "replication")  # parsed by redis-py into a dict
    return bool(info.get("master_port") == master.port)


def _tag_on(cluster: Cluster, master: Any) -> int:
    """A number whose hash tag `{n}` lands on `master`'s slots."""
    ranges = cluster.masters()[master.address]
    for n in range(100_000):
        slot = int(master.call("CLUSTER", "KEYSLOT", f"bench{{{n}}}"))
        if any(low <= slot <= high for low, high in ranges):
            return n
    raise LookupError("no tag for this master")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
