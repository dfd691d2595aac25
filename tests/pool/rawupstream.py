"""An upstream on bare sockets that records every frame as it arrived, for passthrough tests.

Each connection: the handshake, then every frame is recorded (its first byte, its mask key,
the unmasked payload) and answered:
- a text frame `send:HEX` makes it write the bytes HEX, as they are, and nothing else;
- any other data frame is echoed in a frame with the same first byte (FIN, opcode), unmasked;
- a ping gets a pong, a close gets a close with the same code and the socket is closed.
A library upstream cannot be told to write a fragment or an invalid text; this one can.
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass, field

from tests.support import switching_protocols


@dataclass
class Frame:
    first: int  # FIN, RSV and opcode, as received
    key: bytes | None  # the mask key, None for an unmasked frame
    payload: bytes  # unmasked


@dataclass
class RawUpstream:
    """Listening on 127.0.0.1:port from `start` to `stop`; `frames` lists what it received."""

    port: int = 0
    frames: list[Frame] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)

    def start(self) -> RawUpstream:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        self._listener.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._listener.close()

    def url(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def data_frames(self) -> list[Frame]:
        return [f for f in self.frames if f.first & 0x0F < 8]

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        reader = conn.makefile("rb")
        try:
            key = b""
            while (line := reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            conn.sendall(switching_protocols(key))
            while (frame := read_frame(reader)) is not None:
                self.frames.append(frame)
                if not self._answer(conn, frame):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _answer(self, conn: socket.socket, frame: Frame) -> bool:
        opcode = frame.first & 0x0F
        if opcode == 0x8:
            code = struct.unpack("!H", frame.payload[:2])[0] if frame.payload else 1005
            self.closes.append(code)
            conn.sendall(server_frame(0x88, frame.payload[:2]))
            return False
        if opcode == 0x9:
            conn.sendall(server_frame(0x8A, frame.payload))
        elif opcode == 0x1 and frame.payload.startswith(b"send:"):
            conn.sendall(bytes.fromhex(frame.payload[5:].decode()))
        elif opcode < 0x8:
            conn.sendall(server_frame(frame.first, frame.payload))
        return True


def read_frame(reader: object) -> Frame | None:
    read = reader.read  # type: ignore[attr-defined]
    head = read(2)
    if len(head) < 2:
        return None
    first, second = head
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", read(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", read(8))[0]
    key = read(4) if second & 0x80 else None
    payload = read(length)
    if key is not None:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return Frame(first, key, payload)


def server_frame(first: int, payload: bytes) -> bytes:
    """An unmasked frame with this first byte (FIN, opcode) and payload."""
    length = len(payload)
    if length < 126:
        return struct.pack("!BB", first, length) + payload
    if length < 65536:
        return struct.pack("!BBH", first, 126, length) + payload
    return struct.pack("!BBQ", first, 127, length) + payload
