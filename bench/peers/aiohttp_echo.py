"""Bare aiohttp peer: the baseline every ratio is taken against.

`/echo` sends each message back; `/rooms/{room}` is the naive broadcast a user would write
first: the sender's message is awaited into every other socket of the room, one by one.
No keepalive (heartbeat off), no metrics, aiohttp defaults otherwise.
"""

from __future__ import annotations

from _cli import parse_args, run, wait_for_signal
from aiohttp import WSMsgType, web

ROOMS: web.AppKey[dict[str, set[web.WebSocketResponse]]] = web.AppKey("rooms", dict)


async def echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def room(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    members = request.app[ROOMS].setdefault(request.match_info["room"], set())
    members.add(ws)
    try:
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                for other in list(members):
                    if other is not ws and not other.closed:
                        await other.send_str(msg.data)
            elif msg.type is WSMsgType.BINARY:
                for other in list(members):
                    if other is not ws and not other.closed:
                        await other.send_bytes(msg.data)
    finally:
        members.discard(ws)
    return ws


async def main(host: str, port: int) -> None:
    app = web.Application()
    app[ROOMS] = {}
    app.add_routes([web.get("/echo", echo), web.get("/rooms/{room}", room)])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    await wait_for_signal()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    run(main(args.host, args.port), args.loop)
