"""proxy: each client is bridged to its own upstream connection from the pool.

Two readers per client, no more: the link's pump (upstream -> client) and this handler (client
-> upstream), both callbacks run straight from the frame reader. Each returns the other side's
send, whose pending future holds its reading, so a slow reader on either end slows the reading
of the other instead of buffering without bound. Frames pass byte-exact and in order.

Data frames pass without being decoded once a client and its upstream are bridged
(`passthrough.bridge`: uncompressed routes without faults); until then, and on other routes,
through these callbacks.

Closes: the upstream's code reaches the client unchanged when it may be sent, else 1014
(`closecodes.relay_code`); the client's reaches the upstream (`closecodes.upstream_close_code`).
No connection within acquire_timeout -> 1013; a failed connect -> 1014.

Forwarded to the upstream: the subprotocol the client agreed with this route, `User-Agent`,
and `X-Forwarded-For` / `-Proto` / `-Host`. Never the client's `Authorization` or `Cookie`
(wsrelay's own credentials), nor `Origin`. The upstream's configured `headers` win.
"""

from __future__ import annotations

import asyncio

from aiohttp import hdrs, web

from .. import closecodes, passthrough
from ..faults import FAULTS_KEY
from ..faults.hook import FaultyWebSocket
from ..keys import POOL
from ..upstream import Link, UpstreamUnavailable
from ..websocket import Data, WebSocket
from .context import RouteContext, WebSocketHandler


def forwarded_headers(request: web.Request) -> dict[str, str]:
    """What the upstream learns about the client: its agent and where it came from."""
    headers = {
        "X-Forwarded-Proto": request.scheme,
        "X-Forwarded-Host": request.host,
    }
    agent = request.headers.get(hdrs.USER_AGENT)
    if agent:
        headers[hdrs.USER_AGENT] = agent
    peer = request.remote
    if peer:
        prior = request.headers.get(hdrs.X_FORWARDED_FOR)
        headers[hdrs.X_FORWARDED_FOR] = f"{prior}, {peer}" if prior else peer
    return headers


#: How long close_after/abort_after wait for the upstream's answers to the Nth message.
ANSWER_GRACE = 5.0


def proxy(ctx: RouteContext) -> WebSocketHandler:
    assert ctx.route.upstream is not None
    pool = ctx.app[POOL].upstream(ctx.route.upstream)

    async def handler(request: web.Request, ws: WebSocket) -> None:
        try:
            link = await pool.acquire(ws.subprotocol, forwarded_headers(request))
        except UpstreamUnavailable as error:
            ws.close(error.code, error.reason)
            return
        upstream = link.ws

        def upstream_ended(_: Link) -> None:
            code = closecodes.relay_code(upstream.close_code)
            ws.close(code, "upstream gone" if code == closecodes.BAD_GATEWAY else "")

        link.attach(ws.send, upstream_ended)
        send = upstream.send

        def to_upstream(_: WebSocket, data: Data) -> asyncio.Future[None]:
            # Its pending future holds this client's next messages: a slow upstream paces it.
            return send(data)

        ws.on_text(to_upstream)
        ws.on_binary(to_upstream)
        if isinstance(ws, FaultyWebSocket):
            # close_after/abort_after count the upstream's answers, not the forwarding.
            ws.answers_come_later(ANSWER_GRACE)
        if FAULTS_KEY not in request:  # a route with faults keeps the decoded path
            # Uncompressed and unshaped: from the next message on, frames pass undecoded.
            passthrough.bridge(ws, upstream)
        try:
            await ws.run()
        finally:
            upstream.close(closecodes.upstream_close_code(ws.close_code))

    return handler
