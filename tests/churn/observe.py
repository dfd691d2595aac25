"""What a wsrelay process holds and says: /proc readings and logs for leak and crash checks, and
`check-config`'s verdict on a set of settings."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tests.support import Service, run_wsrelay


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


def check_config(settings: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
    """`wsrelay check-config` with these settings (as `Service` takes them): its verdict."""
    return run_wsrelay("check-config", env=Service(settings).env)
