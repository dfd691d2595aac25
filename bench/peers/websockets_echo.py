"""websockets 17 peer (asyncio implementation): echo on every path, library defaults.

Its defaults keep a keepalive ping every 20 s and accept permessage-deflate when offered
(the load client never offers it), as a user of the library gets them.
"""

from __future__ import annotations

from _cli import parse_args, run, wait_for_signal
from websockets.asyncio.server import ServerConnection, serve


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(host: str, port: int) -> None:
    async with serve(echo, host, port):
        await wait_for_signal()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    run(main(args.host, args.port), args.loop)
