"""Every close wsrelay starts while its peer is still sending, tried many times from outside.

Each case starts the real service (`tests.support.Service`), breaks a rule or waits for the
server to close, and keeps writing a tail of 200-600 kB or more; a try counts as lost when its
reader never sees the close frame with the expected code. Run alone for a figure:

    python -m tests.closing.cases --tries 1000 [CASE ...]
"""

from __future__ import annotations

import argparse
import random
import socket
import struct
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.closing.rawclose import (
    OP_BINARY,
    OP_CLOSE,
    OP_TEXT,
    Outcome,
    Try,
    endless_message,
    filler_frames,
    oversized,
    tail_size,
)
from tests.support import RawClient, Service, client_frame, free_port, switching_protocols

#: The route limit the violations break, and the largest echo written ahead of them.
LIMIT = 65536
PRE_MAX = 200_000
DROPS = "wsrelay_dropped_messages_total"
#: A fragmented message that never ends is written this fast (a chunk per PACE seconds).
PACE = 0.004


@dataclass
class Result:
    """Outcomes of one case: (code, how the link ended) -> count; `lost` tries had no code."""

    case: str
    expected: int
    outcomes: Counter[tuple[int | None, str]] = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.outcomes[(outcome.code, outcome.ended)] += 1

    @property
    def tries(self) -> int:
        return sum(self.outcomes.values())

    @property
    def lost(self) -> int:
        return sum(n for (code, _), n in self.outcomes.items() if code != self.expected)

    @property
    def reset(self) -> int:
        """Tries whose TCP connection ended with a reset after the close frame."""
        return sum(n for (_, ended), n in self.outcomes.items() if ended != "eof")

    def line(self) -> str:
        seen = ", ".join(f"{code}/{ended}: {n}" for (code, ended), n in self.outcomes.items())
        return (
            f"{self.case}: {self.tries} tries, {self.lost} lost close frames, "
            f"{self.reset} not ended cleanly ({seen}) in {self.seconds:.1f} s"
        )


def echo_routes(**options: Any) -> list[dict[str, Any]]:
    return [{"path": "/echo", "mode": "echo", "max_message_bytes": LIMIT, **options}]


def quiet(env: dict[str, Any]) -> dict[str, Any]:
    return {"LOG_LEVEL": "warning", "PING_INTERVAL": 0, **env}


# -- a violation after an echoed upload -----------------------------------------------------------
def violation_case(
    name: str, expected: int, violation: Callable[[int], Iterator[bytes]]
) -> Callable[[int, int], Result]:
    """Echoed frames (0-200 kB, left unread: the close frame queues behind them), then a
    violation and its tail."""

    def run(tries: int, seed: int) -> Result:
        rng = random.Random(seed)
        result = Result(name, expected)
        with Service(quiet({"ROUTES": echo_routes()})) as service:
            for _ in range(tries):
                pre = filler_frames(rng.randrange(PRE_MAX))
                chunks = iter([*pre, *violation(tail_size(rng))])
                result.add(Try(service.port, "/echo", chunks).finish())
        return result

    return run


def _bad_frame(frame: bytes) -> Callable[[int], Iterator[bytes]]:
    def violation(tail: int) -> Iterator[bytes]:
        yield frame
        yield from filler_frames(tail)

    return violation


too_big = violation_case("too_big", 1009, oversized)
bad_utf8 = violation_case("bad_utf8", 1007, _bad_frame(client_frame(OP_TEXT, b"ok \xff\xfe")))
bad_opcode = violation_case("bad_opcode", 1002, _bad_frame(client_frame(0x3, b"x")))
unmasked = violation_case("unmasked", 1002, _bad_frame(client_frame(OP_BINARY, b"x", mask=False)))


# -- closes the server starts while the client streams a message that never ends -------------------
def idle(tries: int, seed: int) -> Result:
    """1008 idle timeout: a fragmented message is no message, so the connection is idle."""
    result = Result("idle", 1008)
    routes = [{"path": "/idle", "mode": "echo", "idle_timeout": 0.1}]
    with Service(quiet({"ROUTES": routes, "MAX_MESSAGE_BYTES": 64 << 20})) as service:
        for _ in range(tries):
            attempt = Try(service.port, "/idle", endless_message(), pace=PACE)
            result.add(attempt.finish(before=lambda: None))
    return result


def slow_consumer(tries: int, seed: int) -> Result:
    """1008 slow consumer: a room member that reads nothing while another one publishes (until
    the server counts the drop: the kernel's buffers take megabytes first)."""
    result = Result("slow_consumer", 1008)
    routes = [{"path": "/rooms/{room}", "mode": "broadcast"}]
    env = {"ROUTES": routes, "SEND_QUEUE_BYTES": 65536, "MAX_MESSAGE_BYTES": 64 << 20}
    message = client_frame(OP_BINARY, bytes(65536))
    with Service(quiet(env)) as service:
        for index in range(tries):
            path = f"/rooms/r{index}"
            victim = Try(service.port, path, endless_message(), pace=PACE, rcvbuf=4096)
            publisher = RawClient(service.port, path)
            try:
                for _ in range(64):  # at most 64 MB
                    for _ in range(16):
                        publisher.send(message)
                    if service.metrics().total(DROPS, reason="slow_consumer") > index:
                        break
            finally:
                publisher.close()
            result.add(victim.finish(before=lambda: None))
    return result


def drain(tries: int, seed: int, code: int = 1001, batch: int = 20) -> Result:
    """1001/1012 drain: SIGTERM while every client streams; each gets the close frame."""
    result = Result(f"drain_{code}", code)
    routes = [{"path": "/echo", "mode": "echo"}]
    env = {"ROUTES": routes, "MAX_MESSAGE_BYTES": 64 << 20, "SHUTDOWN_CLOSE_CODE": code}
    done = 0
    while done < tries:
        count = min(batch, tries - done)
        with Service(quiet(env)) as service:
            attempts = [
                Try(service.port, "/echo", endless_message(), pace=PACE * 4) for _ in range(count)
            ]
            time.sleep(0.1)
            service.signal()
            for attempt in attempts:
                result.add(attempt.finish(before=lambda: None))
            service.wait()
        done += count
    return result


def drain_1012(tries: int, seed: int) -> Result:
    return drain(tries, seed, code=1012)


# -- a proxy route, and wsrelay as the client of an upstream --------------------------------------
class RawUpstream:
    """A WebSocket server on bare sockets, one connection at a time, for wsrelay's pool.

    `vanish`: read one frame, then drop the connection without a close frame (the client gets
    1014). `too_big`: send a frame over the route's limit and a tail, then read the close frame
    wsrelay answers with (recorded in `codes`). `bad_after_text`: send a text message and, in
    the same write, a frame with a reserved bit set, then read what comes back until the close
    frame (the text frames in `texts`, the code in `codes`).
    """

    def __init__(self, behaviour: str, seed: int = 0) -> None:
        self.behaviour = behaviour
        self.rng = random.Random(seed)
        self.port = free_port()
        self.codes: list[int | None] = []
        self.code: int | None = None
        self.endings: list[str] = []
        self.texts: list[list[bytes]] = []
        self.stage = "handshake"
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(10)
                self.code = None
                try:
                    rest = self._handshake(conn)
                    if self.behaviour == "vanish":
                        self._vanish(conn, rest)
                        continue
                    if self.behaviour == "bad_after_text":
                        ending = self._bad_after_text(conn)
                    else:
                        ending = self._too_big(conn)
                except OSError as error:
                    ending = f"{type(error).__name__} ({self.stage})"
                self.codes.append(self.code)
                self.endings.append(ending)

    def _handshake(self, conn: socket.socket) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise ConnectionError("closed in the handshake")
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        conn.sendall(switching_protocols(key))
        return rest

    def _vanish(self, conn: socket.socket, rest: bytes) -> None:
        while len(rest) < 2:
            rest += conn.recv(65536)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _too_big(self, conn: socket.socket) -> str:
        size = LIMIT + tail_size(self.rng)
        self.stage = "sending"
        conn.sendall(struct.pack("!BBQ", 0x80 | OP_BINARY, 127, size) + bytes(size))
        self.stage = "reading"
        reader = _FrameReader(conn)
        self._until_close(reader)
        return self._answer_close(conn)

    def _bad_after_text(self, conn: socket.socket) -> str:
        self.stage = "sending"
        conn.sendall(
            struct.pack("!BB", 0x80 | OP_TEXT, 5) + b"Hello"
            + struct.pack("!BB", 0x80 | 0x20 | OP_TEXT, 3) + b"bad"  # RSV2: 1002
        )  # fmt: skip
        self.stage = "reading"
        self.texts.append(self._until_close(_FrameReader(conn)))
        return self._answer_close(conn)

    def _until_close(self, reader: _FrameReader) -> list[bytes]:
        """Read frames until the close frame (its code in `code`); the text payloads read."""
        texts = []
        while self.code is None:
            opcode, payload = reader.frame()
            if opcode == OP_CLOSE:
                self.code = struct.unpack("!H", payload[:2])[0]
            elif opcode == OP_TEXT:
                texts.append(payload)
        return texts

    def _answer_close(self, conn: socket.socket) -> str:
        # A server answers the close and ends TCP first (RFC 6455 7.1.1): FIN, then EOF back.
        self.stage = "closing"
        conn.sendall(struct.pack("!BB", 0x80 | OP_CLOSE, 2) + struct.pack("!H", 1000))
        conn.shutdown(socket.SHUT_WR)
        while conn.recv(65536):
            pass
        return "eof"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()


class _FrameReader:
    """Reads (masked) client frames from a socket."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.buffer = b""

    def _exact(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def frame(self) -> tuple[int, bytes]:
        first, second = self._exact(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._exact(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._exact(8))
        key = self._exact(4) if second & 0x80 else b"\0\0\0\0"
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(self._exact(length)))
        return first & 0x0F, payload


def proxy_routes(upstream: RawUpstream) -> dict[str, Any]:
    return {
        "UPSTREAMS": {"up": {"url": f"ws://127.0.0.1:{upstream.port}/"}},
        "ROUTES": [{"path": "/proxy", "mode": "proxy", "upstream": "up"}],
        "MAX_MESSAGE_BYTES": 64 << 20,
    }


def proxy_1014(tries: int, seed: int) -> Result:
    """1014: the upstream vanishes while the client streams toward it."""
    result = Result("proxy_1014", 1014)
    upstream = RawUpstream("vanish")
    try:
        with Service(quiet(proxy_routes(upstream))) as service:
            for _ in range(tries):
                chunks = iter([client_frame(OP_TEXT, b"go"), *endless_message()])
                attempt = Try(service.port, "/proxy", chunks, pace=PACE)
                result.add(attempt.finish(before=lambda: None))
    finally:
        upstream.close()
    return result


def upstream_too_big(tries: int, seed: int) -> Result:
    """1009 toward an upstream: wsrelay's client side lingers too (the pool's connections)."""
    result = Result("upstream_too_big", 1009)
    upstream = RawUpstream("too_big", seed)
    env = proxy_routes(upstream)
    env["ROUTES"][0]["max_message_bytes"] = LIMIT
    try:
        with Service(quiet(env)) as service:
            for _ in range(tries):
                client = RawClient(service.port, "/proxy")
                client.close_code()  # the client's side ends when its upstream has
                client.close()
            deadline = time.monotonic() + 20
            while len(upstream.codes) < tries and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        upstream.close()
    for code, ended in zip(upstream.codes, upstream.endings, strict=True):
        result.add(Outcome(code=code, ended=ended))
    return result


CASES: dict[str, Callable[[int, int], Result]] = {
    "too_big": too_big,
    "bad_utf8": bad_utf8,
    "bad_opcode": bad_opcode,
    "unmasked": unmasked,
    "idle": idle,
    "slow_consumer": slow_consumer,
    "drain_1001": drain,
    "drain_1012": drain_1012,
    "proxy_1014": proxy_1014,
    "upstream_too_big": upstream_too_big,
}


def run(name: str, tries: int, seed: int = 13) -> Result:
    started = time.monotonic()
    result = CASES[name](tries, seed)
    result.seconds = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("cases", nargs="*", metavar="CASE", help=", ".join(CASES))
    args = parser.parse_args(argv)
    unknown = [name for name in args.cases if name not in CASES]
    if unknown:
        parser.error(f"unknown case {unknown[0]!r}: choose from {', '.join(CASES)}")
    failed = False
    for name in args.cases or list(CASES):
        result = run(name, args.tries, args.seed)
        print(result.line(), flush=True)
        failed |= result.lost > 0 or result.tries != args.tries
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
