"""`wsrelay connect` as a user runs it: through a pipe, in a pseudo-terminal, and its exit codes."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import sys
import time

import pytest

from service.tools.connect import format_message, parse_line
from tests.support import Service, free_port
from tests.tools.conftest import TOKEN, wsrelay

pytestmark = pytest.mark.e2e


def test_a_pipe_gets_the_echo_and_exits_0(service: Service) -> None:
    done = wsrelay("connect", service.ws_url("/echo"), "--once", input=b"hi\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == b"> hi\n< hi\n"
    assert b"closed: 1000 (normal closure)" in done.stderr


def test_raw_output_is_just_the_payload(service: Service) -> None:
    done = wsrelay("connect", service.ws_url("/echo"), "--once", "--raw", input=b"hi\n")
    assert (done.returncode, done.stdout) == (0, b"hi\n")


def test_every_line_comes_back_before_the_close_at_end_of_input(service: Service) -> None:
    lines = [f"line {i}" for i in range(50)]
    done = wsrelay("connect", service.ws_url("/echo"), input="\n".join(lines).encode() + b"\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode().splitlines()
    assert [x for x in out if x.startswith("<")] == [f"< {x}" for x in lines]
    assert [x for x in out if x.startswith(">")] == [f"> {x}" for x in lines]


def test_binary_lines_are_hex(service: Service) -> None:
    done = wsrelay("connect", service.ws_url("/echo"), "--binary", "--once", input=b"01 02 ff\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(b"< [binary 3 bytes] 01 02 ff\n")
    assert (
        service.metrics().value(
            "wsrelay_messages_total", route="/echo", direction="in", type="binary"
        )
        >= 1
    )


def test_a_bad_hex_line_is_reported_and_exit_is_4(service: Service) -> None:
    done = wsrelay("connect", service.ws_url("/echo"), "--binary", input=b"zz\n0a\n")
    assert done.returncode == 4
    assert b"line 1 not sent: not hex" in done.stderr
    assert b"< [binary 1 bytes] 0a" in done.stdout


def test_token_route_401_without_and_echo_with_token(service: Service) -> None:
    refused = wsrelay("connect", service.ws_url("/private"), input=b"x\n")
    assert refused.returncode == 1
    assert b"handshake refused: HTTP 401" in refused.stderr
    done = wsrelay("connect", service.ws_url("/private"), "--token", TOKEN, "--once", input=b"ok\n")
    assert (done.returncode, done.stdout) == (0, b"> ok\n< ok\n")


def test_header_option_reaches_the_server(service: Service) -> None:
    done = wsrelay(
        "connect",
        service.ws_url("/private"),
        "-H",
        f"Authorization: Bearer {TOKEN}",
        "--once",
        input=b"via header\n",
    )
    assert done.returncode == 0, done.stderr


def test_a_server_close_code_is_shown_and_exit_is_3(service: Service) -> None:
    done = wsrelay("connect", service.ws_url("/tiny"), input=b"far more than ten bytes\n")
    assert done.returncode == 3
    assert b"closed: 1009 (message too big)" in done.stderr


def test_unreachable_unknown_and_bad_urls_exit_nonzero(service: Service) -> None:
    nobody = wsrelay("connect", f"ws://127.0.0.1:{free_port()}/echo", input=b"")
    assert nobody.returncode == 1
    assert b"cannot connect" in nobody.stderr
    unknown = wsrelay("connect", service.ws_url("/nowhere"), input=b"")
    assert unknown.returncode == 1
    assert b"HTTP 404" in unknown.stderr
    bad = wsrelay("connect", "ftp://127.0.0.1/echo", input=b"")
    assert bad.returncode == 2
    assert b"expected ws://" in bad.stderr


class Terminal:
    """`wsrelay connect` on a pseudo-terminal, as a person at a keyboard would run it."""

    def __init__(self, *args: str) -> None:
        self.fd, slave = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "connect", *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
        os.close(slave)
        self.output = b""

    def expect(self, text: bytes, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not seen in {self.output!r}"
            if select.select([self.fd], [], [], left)[0]:
                try:
                    self.output += os.read(self.fd, 4096)
                except OSError:  # the child closed the terminal
                    assert text in self.output, f"{text!r} not seen in {self.output!r}"

    def type(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def finish(self) -> int:
        code = self.process.wait(timeout=15)
        os.close(self.fd)
        return code


def test_a_terminal_session_echoes_and_ctrl_d_closes(service: Service) -> None:
    term = Terminal(service.ws_url("/echo"))
    term.expect(b"connected to")
    term.type(b"typed by hand\n")
    term.expect(b"< typed by hand")
    assert b"> typed by hand" not in term.output  # the terminal already shows what was typed
    term.type(b"\x04")  # Ctrl-D: end of input
    term.expect(b"closed: 1000")
    assert term.finish() == 0


def test_ctrl_c_closes_politely_and_exits_130(service: Service) -> None:
    term = Terminal(service.ws_url("/echo"))
    term.expect(b"connected to")
    os.killpg(term.process.pid, signal.SIGINT)
    term.expect(b"closed: 1000")
    assert term.finish() == 130


def test_lines_and_messages_are_formatted_as_documented() -> None:
    assert parse_line(b"hello\r\n", binary=False) == "hello"
    assert parse_line(b"01:02 ff\n", binary=True) == b"\x01\x02\xff"
    with pytest.raises(ValueError, match="UTF-8"):
        parse_line(b"\xff\n", binary=False)
    assert format_message("x", "<", raw=False) == "< x"
    assert format_message(b"\x00\xff", "<", raw=True) == "00ff"
