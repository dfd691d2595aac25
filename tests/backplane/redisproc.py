"""A private `redis-server` on a free loopback port (never the machine's 6379), keeping nothing.

Used by the backplane tests and by bench/backplane/. It can be killed and started again on the
same port, which is how the tests stage a Redis restart; with `tls` it listens for TLS only.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support import free_port

REDIS_SERVER = "redis-server"


def redis_server_binary() -> str | None:
    return shutil.which(REDIS_SERVER)


@dataclass(frozen=True)
class TLSFiles:
    """PEM files of a server certificate for 127.0.0.1 and of the CA that signed it."""

    cert: Path
    key: Path
    ca: Path

    @classmethod
    def issue(cls, folder: Path) -> TLSFiles:
        """A fresh CA (trustme) and a certificate for 127.0.0.1 it signed, written to `folder`."""
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1")
        files = cls(folder / "cert.pem", folder / "key.pem", folder / "ca.pem")
        cert.cert_chain_pems[0].write_to_path(str(files.cert))
        cert.private_key_pem.write_to_path(str(files.key))
        ca.cert_pem.write_to_path(str(files.ca))
        return files


class RedisServer:
    """`redis-server --save "" --appendonly no` bound to 127.0.0.1."""

    def __init__(
        self, port: int | None = None, tls: TLSFiles | None = None, password: str | None = None
    ) -> None:
        binary = redis_server_binary()
        if binary is None:
            raise FileNotFoundError(f"{REDIS_SERVER} not on PATH (Debian package redis-server)")
        self.binary = binary
        self.port = port or free_port()
        self.tls = tls
        self.password = password
        self.process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the object

    @property
    def url(self) -> str:
        auth = "" if self.password is None else f":{self.password}@"
        if self.tls is None:
            return f"redis://{auth}127.0.0.1:{self.port}/0"
        return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls.ca}"

    def _listen_args(self) -> list[str]:
        if self.password is not None:
            return ["--requirepass", self.password, *self._port_args()]
        return self._port_args()

    def _port_args(self) -> list[str]:
        if self.tls is None:
            return ["--port", str(self.port)]
        return [
            *("--port", "0", "--tls-port", str(self.port)),
            *("--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)),
            *("--tls-ca-cert-file", str(self.tls.ca), "--tls-auth-clients", "no"),
        ]

    def _answers_ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as raw:
            sock = raw
            if self.tls is not None:
                context = ssl.create_default_context(cafile=str(self.tls.ca))
                sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
            sock.sendall(b"PING\r\n")
            # Without AUTH a password-protected server answers -NOAUTH: it is up all the same.
            return sock.recv(16).startswith((b"+PONG", b"-NOAUTH"))

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.process = subprocess.Popen(
            [
                self.binary,
                *self._listen_args(),
                *("--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--dir", tempfile.gettempdir()),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise RuntimeError(f"redis-server exited with {code}:\n{self.log}")
            with contextlib.suppress(OSError):
                if self._answers_ping():
                    return self
            time.sleep(0.05)
        raise TimeoutError(f"redis-server did not answer on {self.port}:\n{self.log}")

    def kill(self) -> None:
        """SIGKILL: an outage, not a clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # a frozen process dies as well
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def freeze(self, frozen: bool = True) -> None:
        """SIGSTOP (or SIGCONT): a Redis that holds its connections open but answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)

    @property
    def log(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def client(self) -> Any:
        """A plain redis-py client: the tests' independent view of the server."""
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
