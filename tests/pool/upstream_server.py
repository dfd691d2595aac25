"""A test upstream written with the `websockets` library, run as its own process.

    python -m tests.pool.upstream_server PORT

Paths:
- /echo echoes; /greet sends "welcome" first, then echoes.
- /close?code=N closes with N after the first message (1005: a close frame without a code).
- /tick?every=S sends "tick N PID" every S seconds, N counting for the whole process.
- /flood?count=N&size=B[&wait=1][&every=S] sends N binary messages as fast as the peer reads
  them, or one every S seconds; with wait=1, after the first message it receives.
- /sink reads nothing until GET /release.
GET /stats answers what it saw as JSON: connections open and opened by path, the request
headers and subprotocol of each, the close codes the peer sent (also by path), text messages
received, messages flooded and sunk. Prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

STATS: dict[str, Any] = {
    "open": {},
    "opened": {},
    "headers": [],
    "subprotocols": [],
    "close_codes": [],
    "closes": {},
    "received": [],
    "flooded": 0,
    "sunk": 0,
}
RELEASE = asyncio.Event()
TICKS = iter(range(1, 1 << 62))


def query(ws: ServerConnection) -> dict[str, str]:
    assert ws.request is not None
    return {key: values[0] for key, values in parse_qs(urlsplit(ws.request.path).query).items()}


async def handler(ws: ServerConnection) -> None:
    assert ws.request is not None
    path = urlsplit(ws.request.path).path
    STATS["open"][path] = STATS["open"].get(path, 0) + 1
    STATS["opened"][path] = STATS["opened"].get(path, 0) + 1
    STATS["headers"].append(dict(ws.request.headers.raw_items()))
    STATS["subprotocols"].append(ws.subprotocol)
    args = query(ws)
    try:
        if path in ("/echo", "/greet"):
            if path == "/greet":
                await ws.send("welcome")
            async for message in ws:
                record(message)
                await ws.send(message)
        elif path == "/close":
            record(await ws.recv())
            code = int(args["code"])
            if code == 1005:  # a close frame without a status, which websockets will not send
                ws.transport.write(b"\x88\x00")
                await asyncio.sleep(0.5)  # wsrelay's answer arrives meanwhile
                ws.transport.close()
            else:
                await ws.close(code, "bye")
        elif path == "/tick":
            every = float(args.get("every", "0.05"))
            receiver = asyncio.ensure_future(read_all(ws))
            try:
                while True:
                    await ws.send(f"tick {next(TICKS)} {os.getpid()}")
                    await asyncio.sleep(every)
            finally:
                receiver.cancel()
        elif path == "/flood":
            size = int(args.get("size", "65536"))
            if "wait" in args:  # start when told (a feed connects long before its clients)
                record(await ws.recv())
            pause = float(args.get("every", "0"))
            for index in range(int(args["count"])):
                await ws.send(struct.pack("!I", index) + bytes(size - 4))
                STATS["flooded"] += 1
                if pause:
                    await asyncio.sleep(pause)
            await ws.wait_closed()
        elif path == "/sink":
            await RELEASE.wait()
            async for message in ws:
                STATS["sunk"] += 1
                record(message)
    except Exception:  # the peer went away: what it sent is in STATS
        pass
    finally:
        await ws.wait_closed()
        STATS["open"][path] -= 1
        STATS["close_codes"].append(ws.close_code)
        STATS["closes"].setdefault(path, []).append(ws.close_code)


def record(message: str | bytes) -> None:
    if isinstance(message, str) and len(STATS["received"]) < 10_000:
        STATS["received"].append(message)


async def read_all(ws: ServerConnection) -> None:
    async for message in ws:
        record(message)


def select_subprotocol(ws: ServerConnection, offered: Sequence[str]) -> Subprotocol | None:
    """Speaks "chat" and "superchat" when offered, and plain WebSocket otherwise."""
    for protocol in offered:
        if protocol in ("chat", "superchat"):
            return Subprotocol(protocol)
    return None


def http(connection: ServerConnection, request: Request) -> Response | None:
    path = urlsplit(request.path).path
    if path == "/stats":
        return connection.respond(HTTPStatus.OK, json.dumps(STATS))
    if path == "/release":
        RELEASE.set()
        return connection.respond(HTTPStatus.OK, "released\n")
    return None


async def main(port: int) -> None:
    async with serve(
        handler,
        "127.0.0.1",
        port,
        process_request=http,
        select_subprotocol=select_subprotocol,
        max_size=None,
        ping_interval=None,
    ) as server:
        print("ready", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
