"""`wsrelay connect`'s fault options and --ping, as a user runs them.

The options' query string is read off the request line a real socket server received; the hung
server is a socket that completes the handshake and then neither reads nor writes, so nothing
but the client's own pings can tell it from a quiet one.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from service.tools.faultargs import with_query
from tests.support import Service, switching_protocols
from tests.tools.conftest import wsrelay

pytestmark = pytest.mark.e2e


class HungServer:
    """Accepts one WebSocket handshake, answers 101, then goes silent with TCP kept open."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.request_line = ""
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        self.connections.append(conn)
        head = b""
        while b"\r\n\r\n" not in head:
            head += conn.recv(4096)
        lines = head.decode("latin-1").split("\r\n")
        self.request_line = lines[0]
        key = next(
            v for k, _, v in (h.partition(": ") for h in lines) if k.lower() == "sec-websocket-key"
        )
        conn.sendall(switching_protocols(key.encode()))
        # ... and never another byte: pings and messages go unanswered, nothing is closed.

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.listener.close()


@pytest.fixture
def hung() -> Iterator[HungServer]:
    server = HungServer()
    yield server
    server.close()


def test_fault_options_become_the_query_and_ping_detects_a_hung_server(hung: HungServer) -> None:
    started = time.monotonic()
    # stdin stays open (a person who has not typed anything): only the ping can end this.
    url = f"ws://127.0.0.1:{hung.port}/faults?app=1&delay=1s"
    options = ["--delay", "50ms", "--no-pong", "--close-reason", "bye now", "--seed", "7"]
    client = subprocess.Popen(
        [sys.executable, "-m", "service", "connect", url, *options, "--ping", "0.5"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        client.wait(timeout=30)
    finally:
        client.kill()
        assert client.stdin is not None
        assert client.stderr is not None
        client.stdin.close()
        stderr = client.stderr.read()
    elapsed = time.monotonic() - started
    # The URL's own parameters stay, an option replaces the same-named one, SPEC's order.
    assert hung.request_line == (
        "GET /faults?app=1&delay=50ms&close_reason=bye%20now&no_pong=true&seed=7 HTTP/1.1"
    )
    assert client.returncode == 3, stderr
    assert b"closed: 1006 (abnormal closure (no close frame)): no pong within 0.5 s" in stderr
    assert b"pong after" not in stderr
    assert elapsed >= 1.0  # one interval before the ping, one waiting for its pong


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--delay", "40s", b"wsrelay connect: --delay 40s is above the maximum 30s"),
        ("--drop", "1.5", b"wsrelay connect: --drop 1.5 is outside 0-1"),
        ("--close-code", "1006", b"wsrelay connect: --close-code 1006 cannot be sent"),
        ("--fragment", "3", b"wsrelay connect: --fragment 3 is outside"),
        ("--close-after", "many", b"wsrelay connect: --close-after 'many' is not a whole number"),
    ],
)
def test_a_bad_fault_value_is_one_line_and_exit_2(option: str, value: str, message: bytes) -> None:
    # Port 1 is never reached: the value is refused before any socket opens.
    done = wsrelay("connect", "ws://127.0.0.1:1/faults", option, value, input=b"")
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert done.stderr.count(b"\n") == 1


def test_ping_must_be_positive() -> None:
    done = wsrelay("connect", "ws://127.0.0.1:1/echo", "--ping", "0", input=b"")
    assert (done.returncode, done.stderr) == (
        2,
        b"wsrelay connect: --ping must be above 0 seconds\n",
    )


def test_with_query_keeps_other_parameters_and_encodes_values() -> None:
    assert with_query("ws://h/p", {}) == "ws://h/p"
    assert with_query("ws://h/p?a=1&b=2&a=3", {"b": "x y"}) == "ws://h/p?a=1&a=3&b=x%20y"
    assert with_query("ws://h/p?token=t%2Bu", {"seed": "1"}) == "ws://h/p?token=t%2Bu&seed=1"


def test_a_refusal_shows_its_status_and_retry_after(service: Service) -> None:
    done = wsrelay("connect", service.ws_url("/faults"), "--reject", "503", input=b"")
    assert done.returncode == 1
    assert re.fullmatch(
        rb"handshake refused: HTTP 503 Service Unavailable \(Retry-After: \d+\)\n", done.stderr
    ), done.stderr
    done = wsrelay("connect", service.ws_url("/faults"), "--reject", "418", input=b"")
    assert (done.returncode, done.stderr) == (1, b"handshake refused: HTTP 418 I'm a Teapot\n")


def test_ping_finds_the_server_that_hangs_on_purpose(service: Service) -> None:
    options = ["--hang-in", "1s", "--ping", "0.3"]
    client = subprocess.Popen(
        [sys.executable, "-m", "service", "connect", service.ws_url("/faults"), *options],
        stdin=subprocess.PIPE,  # left open: only the ping can end it
        stderr=subprocess.PIPE,
    )
    try:
        assert client.wait(timeout=30) == 3
    finally:
        client.kill()
        assert client.stdin is not None
        assert client.stderr is not None
        client.stdin.close()
        stderr = client.stderr.read().decode()
    assert stderr.count("pong after") >= 1  # answered before the hang...
    assert stderr.endswith("no pong within 0.3 s: the server is hung\n")  # ... not after
