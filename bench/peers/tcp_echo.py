"""Raw TCP echo on uvloop: no WebSocket framing at all, the floor of what a Python server costs.

The load client's `tcp` mode sends the same payload sizes unframed and waits for as many
bytes back, so a message here is the same bytes on the wire minus the 2-14 byte frame header.
"""

from __future__ import annotations

import asyncio
from typing import cast

from _cli import parse_args, run, wait_for_signal


class Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


async def main(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, host, port, backlog=1024)
    async with server:
        await wait_for_signal()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    run(main(args.host, args.port), args.loop)
