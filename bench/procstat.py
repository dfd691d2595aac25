"""What the harness reads from /proc: a process's CPU seconds and RSS, each core's busy time.

Read from /proc rather than asked of the server, so every peer is measured the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process, all its threads (utime, stime of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_bytes(pid: int) -> int:
    """Resident set size (second field of /proc/PID/statm)."""
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * PAGE


@dataclass(frozen=True)
class CoreTimes:
    """Busy and total jiffies per core, to tell how much of a core other processes took."""

    busy: tuple[int, ...]
    total: tuple[int, ...]

    @classmethod
    def read(cls) -> CoreTimes:
        busy: list[int] = []
        total: list[int] = []
        with open("/proc/stat") as f:
            for line in f:
                name, *rest = line.split()
                if not (name.startswith("cpu") and name[3:].isdigit()):
                    continue
                v = [int(x) for x in rest[:8]]  # user nice system idle iowait irq softirq steal
                busy.append(v[0] + v[1] + v[2] + v[5] + v[6] + v[7])
                total.append(sum(v))
        return cls(tuple(busy), tuple(total))

    def busy_seconds_since(self, earlier: CoreTimes, core: int) -> float:
        return (self.busy[core] - earlier.busy[core]) / TICK


def loadavg() -> tuple[float, float, float]:
    one, five, fifteen = os.getloadavg()
    return (one, five, fifteen)
