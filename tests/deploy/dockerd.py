"""A private Docker daemon for the container test: Debian's docker.io, started and stopped here.

It gets its own data root, exec root and socket, no bridge and no iptables rules, so it touches
nothing of the machine's networking and containers use host networking only. When it cannot
start (not root, package missing, kernel refuses), the caller skips with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from .tools import run

#: Debian's client, the daemon's own version (a newer client may also be on the PATH).
DEBIAN_DOCKER = Path("/usr/bin/docker")


class Dockerd:
    """dockerd in a temporary folder; `docker(...)` talks to it."""

    def __init__(self) -> None:
        # A short path: the daemon's unix sockets live under it (108-byte limit).
        self.root = Path(tempfile.mkdtemp(prefix="wsrelay-dockerd-", dir="/tmp"))
        self.socket = self.root / "docker.sock"
        self.host = f"unix://{self.socket}"
        self.client = str(DEBIAN_DOCKER if DEBIAN_DOCKER.exists() else shutil.which("docker"))
        self.log = self.root / "dockerd.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment for docker clients (and `make image`) to reach this daemon."""
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0"}

    def start(self, timeout: float = 60) -> None:
        """Start and wait until it answers; pytest.skip with the reason if it cannot."""
        if os.geteuid() != 0:
            pytest.skip("the Docker daemon needs root: container test not run")
        for command in ("dockerd", "containerd", "runc"):
            if not shutil.which(command):
                pytest.skip(f"{command} is missing: Debian package docker.io (make system-deps)")
        config = self.root / "daemon.json"
        config.write_text("{}")  # nothing from /etc/docker/daemon.json
        self.process = subprocess.Popen(
            [
                "dockerd",
                f"--config-file={config}",
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.root / 'docker.pid'}",
                f"--host={self.host}",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
            ],
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("wb"),
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.stop()
                pytest.skip(
                    f"dockerd could not start (exit {self.process.returncode}):\n{self.tail()}"
                )
            if self.socket.exists() and run([self.client, "version"], env=self.env).returncode == 0:
                return
            time.sleep(0.5)
        self.stop()
        pytest.skip(f"dockerd did not answer within {timeout:.0f} s:\n{self.tail()}")

    def tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run([self.client, *args], env=self.env, timeout=timeout)

    def inspect(self, name: str) -> dict[str, Any]:
        result = self.docker("inspect", name)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout)[0])

    def stop(self) -> None:
        """Remove every container, stop the daemon (and its containerd), delete its folder."""
        if self.process is not None and self.process.poll() is None:
            containers = self.docker("ps", "-aq").stdout.split()
            if containers:
                self.docker("rm", "-f", *containers)
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        # Mounts the daemon may have left behind, deepest first, before the folder goes.
        mounts = [
            line.split()[1]
            for line in Path("/proc/mounts").read_text().splitlines()
            if line.split()[1].startswith(str(self.root))
        ]
        for mount in sorted(mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
