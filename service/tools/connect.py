"""Interactive WebSocket client, like wscat: stdin lines go out, arrivals are printed.

`wsrelay connect URL`: lines read from stdin become messages (UTF-8 text, or with --binary
hex bytes); what arrives is printed with `<` (and, when stdin is not a terminal, what was
sent with `>`), so a pipe gives a readable transcript. Status goes to stderr, data to stdout.

On stdin's end (Ctrl-D) the client starts the close handshake and keeps printing what arrives
until the server's close frame: nothing the server sent before it is lost.

The testing target's fault options (`--delay 50ms`, `--close-after 3`, ...) go into the URL's
query string (faultargs.py). `--ping S` pings every S seconds and prints each pong's round
trip; a pong that does not come within S seconds ends the session: the server is hung.

Exit codes: 0 closed with 1000, 1 could not connect, 2 bad options, 3 closed with any other
code (or the connection was lost), 4 some input lines were not valid and were not sent,
130 interrupted (Ctrl-C; the close handshake still runs).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import signal
import struct
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

import aiohttp

from service.tools.closenames import describe_close
from service.tools.target import Target, add_target_arguments, target_from_args

EXIT_OK = 0
EXIT_CONNECT = 1
EXIT_USAGE = 2
EXIT_CLOSED_BADLY = 3
EXIT_BAD_INPUT = 4
EXIT_INTERRUPTED = 130

#: How long to wait for the server's close frame after ours.
CLOSE_TIMEOUT = 5.0


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of `wsrelay connect`."""
    add_target_arguments(parser)
    parser.add_argument(
        "-b", "--binary", action="store_true", help="stdin lines are hex, sent as binary frames"
    )
    parser.add_argument(
        "-1", "--once", action="store_true", help="close after the first message arrives"
    )
    parser.add_argument(
        "--raw",
        action="store_true",
        help="print arrivals without markers (binary as hex), and not what was sent",
    )
    parser.add_argument(
        "--connect-timeout", type=float, default=10.0, metavar="SECONDS", help="default 10"
    )
    parser.add_argument(
        "--ping",
        type=float,
        metavar="SECONDS",
        help="ping every SECONDS and print the round trip; no pong within SECONDS ends it (exit 3)",
    )


def main(args: argparse.Namespace) -> int:
    """Runs one session; returns the exit code described in the module docstring."""
    try:
        target = target_from_args(args)
    except ValueError as exc:
        print(f"wsrelay connect: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.ping is not None and not args.ping > 0:
        print("wsrelay connect: --ping must be above 0 seconds", file=sys.stderr)
        return EXIT_USAGE
    options = Options(
        binary=args.binary,
        once=args.once,
        raw=args.raw,
        show_sent=not args.raw and not sys.stdin.isatty(),
        connect_timeout=args.connect_timeout,
        ping=args.ping,
    )
    try:
        return asyncio.run(Session(target, options).run())
    except KeyboardInterrupt:  # before the connection was up, or a second Ctrl-C
        _status("interrupted")
        return EXIT_INTERRUPTED


@dataclass(frozen=True)
class Options:
    binary: bool = False
    once: bool = False
    raw: bool = False
    show_sent: bool = False
    connect_timeout: float = 10.0
    ping: float | None = None


def parse_line(line: bytes, binary: bool) -> str | bytes:
    """One stdin line (its newline stripped) as a message; ValueError when it is not valid."""
    line = line.rstrip(b"\n").removesuffix(b"\r")
    if binary:
        try:
            return bytes.fromhex(line.decode("ascii").replace(":", " "))
        except (UnicodeDecodeError, ValueError):
            raise ValueError("not hex (expected e.g. '01 02 ff')") from None
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not valid UTF-8") from None


def format_message(data: str | bytes, marker: str, raw: bool) -> str:
    """A message as printed: `< text` or `< [binary 3 bytes] 0102ff`."""
    if isinstance(data, str):
        return data if raw else f"{marker} {data}"
    if raw:
        return data.hex()
    return f"{marker} [binary {len(data)} bytes] {data.hex(' ')}"


def refusal(status: int, headers: Mapping[str, str] | None) -> str:
    """`HTTP 503 Service Unavailable (Retry-After: 1)`: what a refused handshake answered."""
    try:
        text = f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        text = f"HTTP {status}"
    retry = headers.get("Retry-After") if headers else None
    return f"{text} (Retry-After: {retry})" if retry else text


def _echoable(code: int | None) -> int:
    """The code to answer a server's close frame with (its own, when it may be sent)."""
    if code is not None and (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code < 5000):
        return code
    return 1000


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]) -> None:
    """Thread body: blocking reads work for ttys, pipes and regular files alike.

    It reads the file descriptor, not `sys.stdin`: a thread blocked inside the buffered reader
    holds its lock, and the interpreter would abort on that lock at exit.
    """
    pending = b""
    try:
        while chunk := os.read(0, 65536):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                loop.call_soon_threadsafe(queue.put_nowait, line + b"\n")
        if pending:
            loop.call_soon_threadsafe(queue.put_nowait, pending)
        loop.call_soon_threadsafe(queue.put_nowait, None)
    except (OSError, RuntimeError):  # stdin closed, or the loop already gone
        pass


@dataclass
class Session:
    """One connection: a writer fed by stdin, a reader printing arrivals, one close."""

    target: Target
    options: Options
    close_code: int | None = None
    close_reason: str = ""
    bad_lines: int = 0
    interrupted: bool = False
    _close_sent: bool = False
    _lines_read: int = 0
    _pong: asyncio.Future[None] | None = None

    async def run(self) -> int:
        timeout = aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT)
        async with aiohttp.ClientSession() as http:
            try:
                ws = await asyncio.wait_for(
                    http.ws_connect(
                        self.target.url,
                        headers=list(self.target.headers),
                        protocols=self.target.subprotocols,
                        autoclose=False,
                        autoping=self.options.ping is None,
                        max_msg_size=0,
                        timeout=timeout,
                    ),
                    self.options.connect_timeout,
                )
            except aiohttp.WSServerHandshakeError as exc:
                _status(f"handshake refused: {refusal(exc.status, exc.headers)}")
                return EXIT_CONNECT
            except TimeoutError:
                _status(f"cannot connect to {self.target.url}: timed out")
                return EXIT_CONNECT
            except (aiohttp.ClientError, OSError) as exc:
                _status(f"cannot connect to {self.target.url}: {exc}")
                return EXIT_CONNECT
            return await self._converse(ws)

    async def _converse(self, ws: aiohttp.ClientWebSocketResponse) -> int:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._install_interrupt(loop, ws)
        protocol = f" (subprotocol {ws.protocol})" if ws.protocol else ""
        _status(f"connected to {self.target.url}{protocol}; Ctrl-D closes")
        threading.Thread(target=_read_stdin, args=(loop, queue), daemon=True).start()
        writer = asyncio.create_task(self._write(ws, queue))
        reader = asyncio.create_task(self._read(ws))
        pinger = asyncio.create_task(self._ping(ws, reader)) if self.options.ping else None
        try:
            await asyncio.wait({reader})  # cancelled by the pinger when the server is hung
        finally:
            for task in (writer, reader, pinger):
                if task:
                    task.cancel()
            loop.remove_signal_handler(signal.SIGINT)
        _status(f"closed: {describe_close(self.close_code, self.close_reason)}")
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.close_code != 1000:
            return EXIT_CLOSED_BADLY
        return EXIT_BAD_INPUT if self.bad_lines else EXIT_OK

    def _install_interrupt(
        self, loop: asyncio.AbstractEventLoop, ws: aiohttp.ClientWebSocketResponse
    ) -> None:
        """First Ctrl-C closes politely; a second one is the default hard stop."""

        def interrupt() -> None:
            self.interrupted = True
            loop.remove_signal_handler(signal.SIGINT)
            loop.create_task(self._start_close(ws))

        loop.add_signal_handler(signal.SIGINT, interrupt)

    async def _write(
        self, ws: aiohttp.ClientWebSocketResponse, queue: asyncio.Queue[bytes | None]
    ) -> None:
        while (line := await queue.get()) is not None:
            self._lines_read += 1
            try:
                data = parse_line(line, self.options.binary)
            except ValueError as exc:
                self.bad_lines += 1
                _status(f"line {self._lines_read} not sent: {exc}")
                continue
            if self._close_sent:
                return
            try:
                if isinstance(data, str):
                    await ws.send_str(data)
                else:
                    await ws.send_bytes(data)
            except (aiohttp.ClientError, ConnectionError) as exc:
                _status(f"send failed: {exc}")
                return
            if self.options.show_sent:
                _print(format_message(data, ">", raw=False))
        if not self.options.once:
            await self._start_close(ws)

    async def _start_close(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Sends our close frame; the reader goes on until the server's close arrives."""
        if self._close_sent or ws.closed:
            return
        self._close_sent = True
        try:
            await ws.send_frame(struct.pack("!H", 1000), aiohttp.WSMsgType.CLOSE)
        except (aiohttp.ClientError, ConnectionError):
            return

    async def _ping(self, ws: aiohttp.ClientWebSocketResponse, reader: asyncio.Task[None]) -> None:
        """Pings every --ping seconds; without a pong in time it stops the reader: a hung
        server answers no close handshake either, so the session just drops the socket."""
        assert self.options.ping is not None
        for n in itertools.count():
            await asyncio.sleep(self.options.ping)
            payload = n.to_bytes(8, "big")
            self._pong = asyncio.get_running_loop().create_future()
            sent = time.monotonic()
            try:
                await ws.ping(payload)
                await asyncio.wait_for(asyncio.shield(self._pong), self.options.ping)
            except TimeoutError:
                self.close_code = 1006
                self.close_reason = f"no pong within {self.options.ping:g} s: the server is hung"
                reader.cancel()
                return
            except (aiohttp.ClientError, ConnectionError):
                return
            _status(f"pong after {(time.monotonic() - sent) * 1000:.1f} ms")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            timeout = CLOSE_TIMEOUT if self._close_sent else None
            try:
                msg = await ws.receive(timeout=timeout)
            except TimeoutError:
                self.close_code = 1006
                self.close_reason = "no close frame from the server in time"
                return
            if msg.type is aiohttp.WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is aiohttp.WSMsgType.PONG:
                if self._pong is not None and not self._pong.done():
                    self._pong.set_result(None)
            elif msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                _print(format_message(msg.data, "<", self.options.raw))
                if self.options.once:
                    await self._start_close(ws)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                self.close_code, self.close_reason = msg.data, msg.extra or ""
                if not self._close_sent:
                    await ws.close(code=_echoable(msg.data))
                return
            elif msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                self.close_code = ws.close_code if ws.close_code not in (None, 1000) else 1006
                if msg.type is aiohttp.WSMsgType.ERROR:
                    self.close_reason = str(msg.data)
                return


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _status(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
