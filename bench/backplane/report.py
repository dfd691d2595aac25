"""RESULTS.md from results.json: the method, then a table per scenario and the comparison."""

from __future__ import annotations

from typing import Any

METHOD = """\
## Method

- One machine ({cpus} CPUs, shared: the load client, the replicas and Redis all run on it),
  Python {python}, uvloop; a private `redis-server` (Debian's 7.0) on a loopback port.
- `memory`: 1 `wsrelay serve` replica with `memory://`. `redis`: 3 replicas with
  `WSRELAY_BACKPLANE_URL=redis://...` sharing that Redis.
- {clients} WebSocket clients (picows) in {rooms} rooms of {per_room}; member *j* of a room
  connects to replica *j* mod replicas, so every room spans every replica. The first
  {publishers} members of each room publish {size}-byte binary messages; together they offer
  a fixed rate (open loop), stepped up ({step_seconds:g} s a step, {grace:g} s to drain) until
  a step delivers less than 99 %, loses a client, or its p99 passes 1 s.
- Latency is end to end on one clock: from the moment the load client writes a message to
  the moment a member's socket hands it to the client, through the replicas (and Redis).
  The schedule never waits for deliveries; "send lag" is how far the writes fell behind it
  (a busy client would hide latency there, so it is shown).
- A message is delivered to the {fanout} other members of its room; *cross-replica*
  deliveries are those received on another replica than the publisher's (in `redis`,
  {cross_share:.0%} of them).
- CPU: user+system seconds of the replicas and of Redis (from /proc) and of the load client,
  over each step; microseconds per delivery = replicas' CPU / deliveries. "Other CPU" is what
  the rest of the machine used meanwhile (from /proc/stat): other jobs on a shared machine.
- A step during which other jobs used more than {quiet_cpu:g} CPU s is measured again (at
  most {retries} times) and the least disturbed attempt is kept ("other CPU" column).
- Bounded: {steps} steps at most per scenario; the whole run took {seconds} s.
"""


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(scenario: dict[str, Any]) -> list[str]:
    lines = [
        f"### {scenario['name']}: {scenario['replicas']} replica(s), {scenario['backplane']}",
        "",
        "| offered msg/s | deliveries/s | cross-replica deliveries/s | delivered | p50 ms "
        "| p99 ms | p99.9 ms | cross p50 / p99 ms | replicas CPU s | Redis CPU s | µs CPU/delivery "
        "| client CPU s | other CPU s | send lag ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for step in scenario["steps"]:
        cpu = step["cpu_seconds"]
        latency, cross = step["latency_ms"], step["cross_latency_ms"]
        per = cpu["replicas"] / step["deliveries"] * 1e6 if step["deliveries"] else 0
        lines.append(
            f"| {step['offered_msgs_per_s']:g} | {step['deliveries_per_s']:,} "
            f"| {step['cross_deliveries_per_s']:,} | {step['completion']:.2%} "
            f"| {_ms(latency['p50'])} | {_ms(latency['p99'])} | {_ms(latency['p999'])} "
            f"| {_ms(cross['p50'])} / {_ms(cross['p99'])} | {cpu['replicas']:.2f} "
            f"| {cpu.get('redis', 0):.2f} | {per:.1f} | {cpu['client']:.2f} "
            f"| {cpu.get('other', 0):.2f} "
            f"| {step['max_send_lag_ms']:.1f} |"
        )
    return [*lines, ""]


#: A step is sustained when it delivers everything, loses no client and keeps p99 below this.
SUSTAINED_P99_MS = 100


def sustained(scenario: dict[str, Any]) -> dict[str, Any] | None:
    """The highest sustained step (below it, every step was sustained too)."""
    best = None
    for step in scenario["steps"]:
        p99 = step["latency_ms"]["p99"]
        if step["completion"] < 0.999 or step["disconnects"] or p99 is None:
            break
        if p99 > SUSTAINED_P99_MS:
            break
        best = step
    return best


def render(results: dict[str, Any]) -> str:
    params = results["params"]
    per_room = params["clients"] // params["rooms"]
    redis = next(s for s in results["scenarios"] if s["name"] == "redis")
    cross_share = redis["steps"][0]["expected_cross_share"] if redis["steps"] else 0
    out = [
        "# Backplane benchmark: 3 replicas on Redis vs 1 replica in memory",
        "",
        f"Run {results['started']} by `make bench-backplane` (`python -m bench.backplane`).",
        "",
        METHOD.format(
            cpus=results["machine"]["cpus"],
            python=results["machine"]["python"],
            per_room=per_room,
            fanout=per_room - 1,
            cross_share=cross_share,
            steps=len(params["rates"]),
            seconds=results["seconds"],
            **params,
        ),
        f"## Capacity (highest step delivering >= 99.9 % with p99 <= {SUSTAINED_P99_MS} ms)",
        "",
        "| scenario | deliveries/s | cross-replica deliveries/s | p50 ms | p99 ms |",
        "|---|---|---|---|---|",
    ]
    for scenario in results["scenarios"]:
        best = sustained(scenario)
        if best is None:
            out.append(f"| {scenario['name']} | none | | | |")
            continue
        out.append(
            f"| {scenario['name']} ({scenario['replicas']} replica(s)) "
            f"| {best['deliveries_per_s']:,} | {best['cross_deliveries_per_s']:,} "
            f"| {_ms(best['latency_ms']['p50'])} | {_ms(best['latency_ms']['p99'])} |"
        )
    out += ["", "## Steps", ""]
    for scenario in results["scenarios"]:
        out += _table(scenario)
    out += [
        "## Handing messages to Redis (hot path)",
        "",
        f"{params['hotpath_messages']:,} PUBLISH of {params['size']} bytes from one process "
        "(`bench/backplane/hotpath.py`):",
        "",
        "| way | msgs/s | CPU µs/msg | dropped |",
        "|---|---|---|---|",
    ]
    for way, row in results["hotpath"].items():
        out.append(
            f"| {way} | {row['msgs_per_s']:,} | {row['cpu_us_per_msg']} | {row.get('dropped', 0)} |"
        )
    if results.get("packing"):
        out += ["", *_packing(results["packing"])]
    notes = results.get("notes")
    if notes:
        out += ["", "## Reading", "", notes]
    return "\n".join(out) + "\n"


def _packing(packing: dict[str, Any]) -> list[str]:
    """The section of packing.json (`python -m bench.backplane.packing`): who packs PUBLISH."""
    params = packing["params"]
    out = [
        "## Who packs the PUBLISH commands: by hand or redis-py",
        "",
        f"Run {packing['started']} by `python -m bench.backplane.packing` "
        f"({packing['seconds']} s; load average {packing['loadavg_before']} before, "
        f"{packing['loadavg_after']} after). *hand*: what wsrelay does "
        "(`envelope.publish_command`, the command start computed once per room); "
        "*pack_commands*: redis-py's `connection.pack_commands` over each batch in the writer; "
        "*pack_command*: its `pack_command` per message, pieces written as they are. "
        "Packing alone: timeit, best of 5, a batch of "
        f"{params['batch']}. End to end: one process publishing at a steady rate (nothing "
        "dropped) to a room it is subscribed to, until Redis confirmed every message; its CPU "
        f"per message, median of {params['repeat']} alternating runs (a run that dropped "
        "messages, the machine having stalled, is left out and counted).",
        "",
        "| payload | way | packing alone µs/msg | end to end CPU µs/msg | vs hand "
        "| runs min-max µs | msgs/s | runs left out (messages dropped) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, ways in packing["end_to_end"].items():
        alone = packing["packing_alone_us"][size]
        hand = ways["hand"]["cpu_us_median"]
        rate, count = ways["rate"], ways["messages"]
        for way, row in ways.items():
            if not isinstance(row, dict):
                continue
            median = row["cpu_us_median"]
            out.append(
                f"| {int(size):,} B ({count:,} at {rate:,}/s) | {way} | {alone[way]} "
                f"| {median} | {median / hand - 1:+.0%} "
                f"| {min(row['cpu_us_all'])}-{max(row['cpu_us_all'])} "
                f"| {row['msgs_per_s_median']:,} "
                f"| {row.get('runs_with_drops', 0)} ({row['dropped']}) |"
            )
    return out
