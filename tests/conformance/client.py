"""wsrelay's own client (`WebSocket.connect`) as the testee of wstest's fuzzing server.

One connection per case at `/runCase?case=N&agent=wsrelay`: every message is echoed back with
its type until wstest closes; then `/updateReports` makes wstest write index.json.
"""

from __future__ import annotations

import asyncio

from service.websocket import Options, WebSocket
from tests.conformance.autobahn import AUTOBAHN_MESSAGE_BYTES, FuzzingServer


async def echo_case(url: str, options: Options) -> None:
    ws = await WebSocket.connect(url, options=options)
    async for data in ws:
        ws.send(data)
    await ws.wait_closed()


async def run_client_cases(
    server: FuzzingServer, compress: bool = False, case_timeout: float = 120.0
) -> None:
    """Every case the fuzzing server offers, then its report; keepalive pings off (see tests)."""
    options = Options(max_message_bytes=AUTOBAHN_MESSAGE_BYTES, ping_interval=0, compress=compress)
    async with WebSocket.connect(f"{server.url}/getCaseCount") as ws:
        count = int(await anext(aiter(ws)))
    for case in range(1, count + 1):
        await asyncio.wait_for(echo_case(server.case_url(case), options), case_timeout)
    # wstest writes index.json, then sends a close frame. The client reads nothing until asked,
    # so read to that close (and answer it): waiting on wait_closed alone left wstest waiting
    # for our answer until it dropped the link, about 40 s later.
    ws = await WebSocket.connect(server.update_reports_url())
    await asyncio.wait_for(ws.run(), 60)
    await asyncio.wait_for(ws.wait_closed(), 60)
