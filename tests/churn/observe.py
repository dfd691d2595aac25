"""What a running wsrelay process holds, read from /proc and its logs, for leak and crash checks."""

from __future__ import annotations

import os
from pathlib import Path


def open_fds(pid: int) -> int:
    """File descriptors the process has open: sockets, the listener, the loop's own."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_bytes(pid: int) -> int:
    """Resident memory, as the kernel counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"/proc/{pid}/status has no VmRSS")


def tracebacks(log: str) -> list[str]:
    """Log lines carrying a Python traceback (JSON lines put it in `exc_info`)."""
    return [
        line
        for line in log.splitlines()
        if "Traceback (most recent call last)" in line or '"exc_info"' in line
    ]
