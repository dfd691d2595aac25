"""Non-timed checks the goals need: does wsrelay negotiate permessage-deflate, and when.

A browser always offers permessage-deflate; the goal is that wsrelay declines by default and
accepts on a route with `"compress": true`. Checked with a raw-socket handshake that offers it.
"""

from __future__ import annotations

import base64
import os
import socket
from pathlib import Path
from typing import Any

from bench.harness import BenchError, running
from bench.targets import ECHO_ROUTES, wsrelay


def offers_deflate(port: int, path: str) -> str | None:
    """Handshake offering permessage-deflate; return the Sec-WebSocket-Extensions answered."""
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = sock.recv(4096)
            if not chunk:
                break
            head += chunk
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    if not lines or " 101 " not in lines[0] + " ":
        raise BenchError(f"handshake on {path} answered {lines[0] if lines else 'nothing'}")
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-extensions":
            return value.strip()
    return None


def deflate_check(logdir: Path) -> dict[str, Any]:
    routes: list[dict[str, object]] = [
        *ECHO_ROUTES,
        {"path": "/echo-compressed", "mode": "echo", "compress": True},
    ]
    target = wsrelay(routes=routes)
    if target.missing:
        return {"measured": target.missing, "status": "not measured"}
    try:
        with running(target, logdir) as server:
            default = offers_deflate(server.port, "/echo")
            opted = offers_deflate(server.port, "/echo-compressed")
    except (BenchError, OSError) as exc:
        return {"measured": f"check failed: {exc}", "status": "not measured"}
    ok = default is None and opted is not None and "permessage-deflate" in opted
    measured = (
        f"default route answers {default or 'no extension'}; "
        f"compress route answers {opted or 'no extension'}"
    )
    return {"measured": measured, "status": "met" if ok else "not met"}
