"""A WebSocket peer on a raw socket that can say anything, well-formed or not.

Real clients refuse to send a bad frame, so the fuzzer writes bytes itself: a handshake it may
mangle, client frames whose every header field it may choose, and a reader that turns what the
server answered into frames and a close code.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from tests.support import client_frame

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def handshake(path: str, port: int, headers: Mapping[str, str | None] | None = None) -> bytes:
    """A valid client handshake; `headers` overrides or adds fields (value None removes)."""
    fields: dict[str, str | None] = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers or {})
    lines = [f"GET {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in fields.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    declared_length: int | None = None,
) -> bytes:
    """One client frame with any header bits; `declared_length` lies about the payload size."""
    if declared_length is None:
        data = bytearray(client_frame(opcode & 0xF, payload, fin=fin, mask=mask))
    else:  # the header alone: the payload it announces never comes
        first = (0x80 if fin else 0) | opcode & 0xF
        data = bytearray(struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, declared_length))
        data += os.urandom(4) if mask else b""
    data[0] |= (rsv & 0x7) << 4
    return bytes(data)


def close_frame(code: int | None = 1000, reason: bytes = b"") -> bytes:
    payload = b"" if code is None else struct.pack("!H", code) + reason
    return frame(OP_CLOSE, payload)


@dataclass
class Outcome:
    """What the server did with a connection: its handshake status, frames, and the end."""

    status: int
    response_head: bytes
    frames: list[tuple[int, bytes]] = field(default_factory=list)
    eof: bool = False
    trailing: bytes = b""

    @property
    def close_code(self) -> int | None:
        """The code of the server's close frame (None: it sent none; 1005: one without a code)."""
        for opcode, payload in self.frames:
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        return None


def parse_frames(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Server frames (unmasked) in `data`, and the bytes of an incomplete last frame."""
    frames: list[tuple[int, bytes]] = []
    pos = 0
    while len(data) - pos >= 2:
        opcode = data[pos] & 0x0F
        length = data[pos + 1] & 0x7F
        head = 2
        if length == 126:
            if len(data) - pos < 4:
                break
            length = struct.unpack_from("!H", data, pos + 2)[0]
            head = 4
        elif length == 127:
            if len(data) - pos < 10:
                break
            length = struct.unpack_from("!Q", data, pos + 2)[0]
            head = 10
        if len(data) - pos < head + length:
            break
        frames.append((opcode, data[pos + head : pos + head + length]))
        pos += head + length
    return frames, data[pos:]


class FuzzClient:
    """A blocking socket to the service, with a deadline on every read."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.timeout = timeout

    def __enter__(self) -> FuzzClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        # The server may have given up on us already; what it said is still readable.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.sock.sendall(data)

    def shutdown_write(self) -> None:
        """Half-close: the server sees EOF, our read side stays open for its answer."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def read_head(self) -> tuple[int, bytes, bytes]:
        """The HTTP response head: (status, head, bytes that came after it). Status 0: none."""
        data = b""
        deadline = time.monotonic() + self.timeout
        while b"\r\n\r\n" not in data and time.monotonic() < deadline:
            chunk = self._recv()
            if not chunk:
                break
            data += chunk
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            return 0, data, b""
        parts = head.split(b" ", 2)
        status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        return status, head, rest

    def read_until_closed(self, initial: bytes = b"") -> tuple[bytes, bool]:
        """Read until the server closes the TCP connection or the deadline; (bytes, eof)."""
        data = initial
        answered = False
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if not answered and any(op == OP_CLOSE for op, _ in parse_frames(data)[0]):
                # Answer the server's close as a polite client does, then wait for its EOF.
                self.send(close_frame(1000))
                answered = True
            chunk = self._recv()
            if chunk is None:
                break
            if not chunk:
                return data, True
            data += chunk
        return data, False

    def _recv(self) -> bytes | None:
        """Bytes, b"" at EOF (a reset counts as one), None when the deadline passed."""
        try:
            return self.sock.recv(65536)
        except TimeoutError:
            return None
        except ConnectionResetError:
            return b""


def exchange(
    port: int,
    request: bytes,
    after: bytes = b"",
    half_close: bool = False,
    half_close_request: bool = False,
) -> Outcome:
    """Send a handshake, then `after` (frames or garbage); report what the server did.

    `half_close` sends EOF after `after`; `half_close_request` right after the request.
    """
    with FuzzClient(port) as client:
        client.send(request)
        if half_close_request:
            client.shutdown_write()
        status, head, rest = client.read_head()
        if status == 0:  # no answer: wait to see whether the server hangs up
            data, eof = client.read_until_closed(rest)
            return Outcome(status, head, [], eof, data)
        if status != 101:  # refused; HTTP keep-alive may hold the socket open, so stop here
            return Outcome(status, head, [], False, rest)
        client.send(after)
        if half_close:
            client.shutdown_write()
        data, eof = client.read_until_closed(rest)
        frames, trailing = parse_frames(data)
        return Outcome(status, head, frames, eof, trailing)
