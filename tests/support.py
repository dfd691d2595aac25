"""Test support: run `wsrelay serve` as a real process, read its metrics, speak raw frames.

Any test in the suite may use these (`from tests.support import Service, free_port`).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(
    url: str, headers: Mapping[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET without raising on 4xx/5xx: (status, headers, body)."""
    request = urllib.request.Request(url, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def switching_protocols(key: bytes) -> bytes:
    """A raw server's answer to a handshake with Sec-WebSocket-Key `key` (RFC 6455 4.2.2)."""
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without WSRELAY_* variables, plus `settings` (full names)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WSRELAY_")}
    env.update(settings)
    return env


def run_wsrelay(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `python -m service ARGS` to its end (bounded): exit code, stdout, stderr."""
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=30,
    )


class Service:
    """`python -m service serve` in a subprocess, on a free loopback port, with env settings.

    Used as a context manager: started and waited for (/healthz), stopped with SIGTERM after.
    """

    def __init__(self, env: Mapping[str, Any] | None = None, *, args: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("WSRELAY_")
        }
        self.env.update(
            {
                "WSRELAY_HOST": "127.0.0.1",
                "WSRELAY_PORT": str(self.port),
                "WSRELAY_LOG_LEVEL": "info",
                "PYTHONUNBUFFERED": "1",
            }
        )
        for key, value in (env or {}).items():
            self.env[f"WSRELAY_{key}"] = value if isinstance(value, str) else json.dumps(value)
        self.args = args
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self._stdout = tempfile.TemporaryFile()  # noqa: SIM115
        self.process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, wait: bool = True) -> Service:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", *self.args],
            cwd=tempfile.gettempdir(),  # no stray .env from the repo
            env=self.env,
            stdout=self._stdout,
            stderr=self._stderr,
        )
        if wait:
            self.wait_healthy()
        return self

    def wait_healthy(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"wsrelay exited with {self.process.returncode}:\n{self.stderr}")
            with contextlib.suppress(OSError):
                if http_get(self.url("/healthz"))[0] == 200:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"wsrelay did not become healthy:\n{self.stderr}")

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait: the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise

    def __enter__(self) -> Service:
        try:
            return self.start()
        except BaseException:  # never healthy: stop it, or it outlives the test
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.stop()

    # -- what it says --------------------------------------------------------------------------
    @property
    def stderr(self) -> str:
        self._stderr.seek(0)
        return self._stderr.read().decode(errors="replace")

    @property
    def stdout(self) -> str:
        self._stdout.seek(0)
        return self._stdout.read().decode(errors="replace")

    def log_events(self) -> list[dict[str, Any]]:
        """The JSON log lines it wrote."""
        events = []
        for line in self.stderr.splitlines():
            with contextlib.suppress(ValueError):
                events.append(json.loads(line))
        return events

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ws_url(self, path: str) -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def metrics(self) -> Metrics:
        status, _, body = http_get(self.url("/metrics"))
        assert status == 200
        return Metrics(body.decode())


class Metrics:
    """A parsed /metrics scrape."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {family.name: family for family in text_string_to_metric_families(text)}

    def value(self, sample_name: str, **labels: str) -> float:
        """The value of the one sample named `sample_name` with these labels (0 if absent)."""
        for family in self.families.values():
            for sample in family.samples:
                if sample.name == sample_name and all(
                    sample.labels.get(key) == value for key, value in labels.items()
                ):
                    return float(sample.value)
        return 0.0

    def total(self, sample_name: str, **labels: str) -> float:
        """The sum over every sample named `sample_name` that has these labels."""
        return sum(
            float(sample.value)
            for family in self.families.values()
            for sample in family.samples
            if sample.name == sample_name
            and all(sample.labels.get(key) == value for key, value in labels.items())
        )


# -- raw frames (RFC 6455), for what a library client will not send -------------------------------
def client_frame(
    opcode: int, payload: bytes, *, fin: bool = True, mask: bool = True, key: bytes | None = None
) -> bytes:
    """A client frame; masked (with `key`, random by default) unless told otherwise. `opcode`
    may carry RSV bits (0x40 | opcode: RSV1)."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        header = struct.pack("!BB", first, mask_bit | length)
    elif length < 65536:
        header = struct.pack("!BBH", first, mask_bit | 126, length)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, length)
    if not mask:
        return header + payload
    key = os.urandom(4) if key is None else key
    masked = bytes(byte ^ key[index % 4] for index, byte in enumerate(payload))
    return header + key + masked


class RawClient:
    """A WebSocket client on a bare socket: hand-built frames, and it reads only when told."""

    def __init__(
        self,
        port: int,
        path: str,
        headers: Mapping[str, str] | None = None,
        rcvbuf: int | None = None,
    ) -> None:
        self.sock = socket.socket()
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
            *(f"{key}: {value}" for key, value in (headers or {}).items()),
        ]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._buffer = b""
        head = self._read_until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self._buffer += chunk
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def send(self, frame: bytes) -> None:
        self.sock.sendall(frame)

    def _read_exact(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def read_frame(self) -> tuple[int, bytes]:
        """(opcode, payload) of the next server frame."""
        first, payload = self.read_whole_frame()
        return first & 0x0F, payload

    def read_whole_frame(self) -> tuple[int, bytes]:
        """(first byte: FIN, RSV bits and opcode, payload) of the next server frame."""
        first, second = self._read_exact(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8))
        return first, self._read_exact(length)

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """Frames until the connection ends."""
        while True:
            try:
                yield self.read_frame()
            except (ConnectionError, TimeoutError, OSError):
                return

    def close_code(self) -> int | None:
        """Read until a close frame and return its code (None if the link ended without one)."""
        for opcode, payload in self.frames():
            if opcode == 0x8:
                return int(struct.unpack("!H", payload[:2])[0]) if len(payload) >= 2 else 1005
        return None

    def close(self) -> None:
        self.sock.close()
