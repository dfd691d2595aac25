"""A raw client that breaks a rule and keeps writing, then looks for the server's close frame.

It stands for a client streaming a large upload: a violation (or a fragmented message that
never ends) followed by a tail of 200-600 kB, written by a sender thread while the reader
looks for the close frame. A close frame that the reader never sees ("connection reset" or an
end without one) is a lost close frame: what issue 13 measures. The reader answers the close
as a client does and then waits for the server to end the TCP connection.
"""

from __future__ import annotations

import os
import random
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from tests.support import RawClient, client_frame

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE = 0x0, 0x1, 0x2, 0x8
CHUNK = 32 * 1024
#: The tail each try writes after its violation (the issue measured with 200-600 kB).
TAIL_MIN, TAIL_MAX = 200_000, 600_000


@dataclass
class Outcome:
    """What one try saw: the close code (None: lost), how the link ended, bytes written."""

    code: int | None = None
    ended: str = ""  # "eof" (the server closed), "reset", "timeout"
    sent: int = 0
    send_error: str = ""
    frames: int = field(default=0)


def masked_header(opcode: int, length: int, *, fin: bool = True) -> bytes:
    """The header of a masked client frame of `length` payload bytes (mask key included)."""
    first = (0x80 if fin else 0) | opcode
    if length < 126:
        head = struct.pack("!BB", first, 0x80 | length)
    elif length < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, length)
    return head + os.urandom(4)


def filler_frames(total: int, opcode: int = OP_BINARY) -> Iterator[bytes]:
    """Masked frames of `opcode` carrying `total` payload bytes in all, CHUNK at a time."""
    while total > 0:
        size = min(CHUNK, total)
        total -= size
        yield masked_header(opcode, size) + bytes(size)


def oversized(total: int) -> Iterator[bytes]:
    """One binary frame of `total` bytes: its header is the violation, its payload the tail."""
    yield masked_header(OP_BINARY, total) + bytes(total)


def endless_message(limit: int = 16 << 20) -> Iterator[bytes]:
    """A fragmented message that never ends: continuation frames until `limit` bytes."""
    yield masked_header(OP_BINARY, 1, fin=False) + b"\x00"
    for _ in range(limit // CHUNK):
        yield masked_header(OP_CONT, CHUNK, fin=False) + bytes(CHUNK)


def tail_size(rng: random.Random) -> int:
    return rng.randint(TAIL_MIN, TAIL_MAX)


class Try:
    """One connection: a sender thread writes `chunks` (whole frames: it stops only between
    them); `finish` reads until the close frame."""

    def __init__(
        self,
        port: int,
        path: str,
        chunks: Iterator[bytes],
        *,
        pace: float = 0.0,
        rcvbuf: int | None = None,
    ) -> None:
        self.client = RawClient(port, path, rcvbuf=rcvbuf)
        if self.client.status != 101:
            raise AssertionError(f"handshake answered {self.client.status}")
        self.outcome = Outcome()
        self._stop = threading.Event()
        self._chunks = chunks
        self._pace = pace
        self._sender = threading.Thread(target=self._send, daemon=True)
        self._sender.start()

    def _send(self) -> None:
        sock = self.client.sock
        try:
            for chunk in self._chunks:
                if self._stop.is_set():
                    return
                sock.sendall(chunk)
                self.outcome.sent += len(chunk)
                if self._pace:
                    time.sleep(self._pace)
        except OSError as error:
            self.outcome.send_error = type(error).__name__

    def finish(
        self,
        timeout: float = 20.0,
        before: Callable[[], None] | None = None,
        *,
        answer: bool = True,
    ) -> Outcome:
        """Read frames until the close frame; answer it (unless this side closed first, then
        `answer` is False); wait for the server's end of TCP."""
        if before is not None:
            before()
        else:  # an upload client: it reads once its tail is written (or the write failed)
            self._sender.join(timeout)
        outcome = self.outcome
        client = self.client
        client.sock.settimeout(timeout)
        try:
            while True:
                opcode, payload = client.read_frame()
                outcome.frames += 1
                if opcode == OP_CLOSE:
                    outcome.code = struct.unpack("!H", payload[:2])[0] if payload else 1005
                    break
        except TimeoutError:
            outcome.ended = "timeout"
        except (ConnectionError, OSError) as error:
            outcome.ended = "reset" if isinstance(error, ConnectionResetError) else "eof"
        self._stop.set()
        if outcome.code is not None:
            outcome.ended = self._await_end(client, answer)
        self._sender.join(timeout)
        client.close()
        return outcome

    def _await_end(self, client: RawClient, answer: bool) -> str:
        """Answer the close as a client does; the server then ends the TCP connection."""
        self._sender.join(10)  # never two writers on the socket at once
        try:
            if answer:
                client.send(client_frame(OP_CLOSE, struct.pack("!H", 1000)))
            while client.sock.recv(65536):
                pass
        except TimeoutError:
            return "timeout"
        except ConnectionResetError:
            return "reset"
        except OSError:
            return "eof"
        return "eof"
