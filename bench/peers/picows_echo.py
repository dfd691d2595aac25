"""picows 2.3 peer: echo on every path, frames sent back from the receive callback.

picows is a Cython WebSocket library with a callback API (no per-message task or future):
the fastest Python-hosted WebSocket server we know, and so the upper mark for wsrelay.
"""

from __future__ import annotations

from _cli import parse_args, run, wait_for_signal
from picows import WSFrame, WSListener, WSMsgType, WSTransport, WSUpgradeRequest, ws_create_server


class Echo(WSListener):
    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if frame.msg_type is WSMsgType.CLOSE:
            transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        elif frame.msg_type in (WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION):
            transport.send(frame.msg_type, frame.get_payload_as_memoryview(), frame.fin)


def listener(_request: WSUpgradeRequest) -> Echo:
    return Echo()


async def main(host: str, port: int) -> None:
    server = await ws_create_server(listener, host, port)
    async with server:
        await wait_for_signal()


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    run(main(args.host, args.port), args.loop)
