"""Who packs the PUBLISH commands: by hand (envelope.publish_command) or redis-py (pack_commands).

`python -m bench.backplane.packing [--messages N] [--repeat R]`, under a minute; raw figures go
to packing.json beside this file, which `python -m bench.backplane` (also --report-only) renders
into RESULTS.md:
  1. the packing alone (timeit, no I/O): per message, for 64 B and 16 KiB payloads;
  2. end to end against a private redis-server: RedisBackplane publishing N messages at a
     steady rate (below what either way sustains: nothing may be dropped) to a room it is
     subscribed to (so, as in production, Redis hands each one back and the subscriber skips
     it), until Redis has confirmed them all; this process's CPU per message. The two ways run
     alternately, R times each, and the median is kept.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import sys
import time
import timeit
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop
from redis.asyncio.connection import AbstractConnection, Connection

from service import frames
from service.backplane import envelope
from service.backplane import redis as redis_backplane
from service.backplane.redis import BATCH, MAX_PENDING, MAX_PENDING_BYTES, RedisBackplane
from service.metrics import Metrics
from tests.backplane.redisproc import RedisServer

HERE = Path(__file__).resolve().parent
ROOM = "/bench#packing"
#: Message size -> messages per second offered in the end-to-end runs.
RATES = {64: 40_000, 16 << 10: 8_000}
#: The producer hands a chunk of messages every TICK seconds (many sockets read per loop turn).
TICK = 0.0025


# -- the way redis-py packs: queue (room, channel, envelope), pack a batch in the writer ----------
class LibraryPacked(RedisBackplane):
    """redis-py's pack_commands over each batch, in the writer task."""

    def _publish_remote(self, room: str, opcode: int, payload: bytes) -> None:
        if (
            not self.up
            or len(self._pending) >= MAX_PENDING
            or self._pending_bytes + len(payload) > MAX_PENDING_BYTES
        ):
            self._dropped(room)
            return
        channel = self._channels.get(room) or (self._prefix + room).encode()
        data = self._headers[opcode] + payload
        self._pending.append((room, (channel, data)))  # type: ignore[arg-type]
        self._pending_bytes += len(data)
        self._writer_wakeup.set()

    async def _write(self, connection: AbstractConnection) -> None:
        pending: deque[Any] = self._pending
        wakeup = self._writer_wakeup
        while True:
            if not pending:
                self._writer_idle.set()
                wakeup.clear()
                await wakeup.wait()
                continue
            batch: list[Any] = [pending.popleft() for _ in range(min(BATCH, len(pending)))]
            self._in_flight = batch
            self._pending_bytes -= sum(len(data) for _, (_, data) in batch)
            packed = self._pack(connection, [item for _, item in batch])
            await connection.send_packed_command(packed, check_health=False)
            async with asyncio.timeout(redis_backplane.REPLY_TIMEOUT):
                for _ in batch:
                    await connection.read_response(timeout=math.inf)
            self._in_flight = []

    @staticmethod
    def _pack(connection: AbstractConnection, batch: list[tuple[bytes, bytes]]) -> list[bytes]:
        return connection.pack_commands([("PUBLISH", channel, data) for channel, data in batch])


class LibraryPackedEach(LibraryPacked):
    """redis-py's pack_command per message, its pieces written as they are (no re-join)."""

    @staticmethod
    def _pack(connection: AbstractConnection, batch: list[tuple[bytes, bytes]]) -> list[bytes]:
        pieces: list[bytes] = []
        for channel, data in batch:
            pieces += connection.pack_command(b"PUBLISH", channel, data)
        return pieces


# -- 1. the packing alone -------------------------------------------------------------------------
def packing_alone(size: int, number: int) -> dict[str, float]:
    """Microseconds per message to turn (channel, payload) into what is written, best of 5."""
    connection = Connection()
    channel = ("wsrelay:0:" + ROOM).encode()
    head = envelope.publish_head(channel)
    header = envelope.header(bytes(8), frames.OP_BINARY)
    payload = b"x" * size
    batch = [payload] * BATCH

    def hand() -> None:
        [envelope.publish_command(head, header, p) for p in batch]

    def library_commands() -> None:
        connection.pack_commands([("PUBLISH", channel, header + p) for p in batch])

    def library_command() -> None:
        [connection.pack_command("PUBLISH", channel, header + p) for p in batch]

    ways = {"hand": hand, "pack_command": library_command, "pack_commands": library_commands}
    return {
        way: round(min(timeit.repeat(fn, number=number, repeat=5)) / number / BATCH * 1e6, 3)
        for way, fn in ways.items()
    }


# -- 2. end to end ---------------------------------------------------------------------------------
async def end_to_end(
    cls: type[RedisBackplane], url: str, count: int, size: int, rate: int
) -> dict[str, Any]:
    metrics = Metrics()
    backplane = cls(url, metrics)
    backplane._room_opened(ROOM)  # subscribed, as a room with a local member would be
    await backplane.start()
    for _ in range(500):
        if backplane.up:
            break
        await asyncio.sleep(0.01)
    assert backplane.up
    payload = b"x" * size
    publish = backplane.publish
    chunk = max(1, round(rate * TICK))
    loop = asyncio.get_running_loop()
    wall, cpu = time.perf_counter(), time.process_time()
    begin = loop.time()
    for start in range(0, count, chunk):
        await asyncio.sleep(max(0.0, begin + start / rate - loop.time()))
        for _ in range(min(chunk, count - start)):
            publish(ROOM, frames.OP_BINARY, payload, None)
    assert await backplane.flush(60)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await asyncio.sleep(0.05)  # let the subscriber read what Redis sends back before closing
    dropped = metrics.dropped_messages.labels("/bench", "backplane")._value.get()
    await backplane.close()
    return {"cpu_us": cpu / count * 1e6, "msgs_per_s": count / wall, "dropped": int(dropped)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.backplane.packing", description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000, help="per run, 64 B")
    parser.add_argument("--big-messages", type=int, default=5_000, help="per run, 16 KiB")
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--out", type=Path, default=HERE / "packing.json")
    args = parser.parse_args(argv)
    started = datetime.now(UTC)
    results: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "params": {
            "messages": args.messages,
            "big_messages": args.big_messages,
            "repeat": args.repeat,
            "rates": RATES,
            "batch": BATCH,
        },
        "loadavg_before": _loadavg(),
        "packing_alone_us": {},
        "end_to_end": {},
    }
    for size in RATES:
        results["packing_alone_us"][size] = packing_alone(size, 40 if size > 1000 else 200)
        print(size, results["packing_alone_us"][size], flush=True)
    ways: dict[str, type[RedisBackplane]] = {
        "hand": RedisBackplane,
        "pack_commands": LibraryPacked,
        "pack_command": LibraryPackedEach,
    }
    with RedisServer() as redis:
        for size, rate in RATES.items():
            count = args.messages if size < 1000 else args.big_messages
            runs: dict[str, list[dict[str, Any]]] = {way: [] for way in ways}
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                for _ in range(args.repeat):
                    for way, cls in ways.items():
                        runs[way].append(runner.run(end_to_end(cls, redis.url, count, size, rate)))
            summary = {way: _summary(rs) for way, rs in runs.items()}
            results["end_to_end"][size] = {"messages": count, "rate": rate, **summary}
            print(size, json.dumps(summary), flush=True)
    results["loadavg_after"] = _loadavg()
    results["seconds"] = round((datetime.now(UTC) - started).total_seconds())
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {args.out}", flush=True)
    return 0


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the runs that dropped nothing (a stalled machine lets the queue overflow)."""
    kept = [r for r in runs if not r["dropped"]] or runs
    return {
        "cpu_us_median": round(statistics.median(r["cpu_us"] for r in kept), 2),
        "cpu_us_all": [round(r["cpu_us"], 2) for r in kept],
        "msgs_per_s_median": round(statistics.median(r["msgs_per_s"] for r in kept)),
        "runs_with_drops": sum(1 for r in runs if r["dropped"]),
        "dropped": sum(r["dropped"] for r in runs),
    }


def _loadavg() -> str:
    """The machine's 1-minute load before and after: the other jobs of a shared machine."""
    return Path("/proc/loadavg").read_text().split()[0]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
