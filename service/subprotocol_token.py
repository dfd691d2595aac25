"""Bearer tokens carried in the WebSocket subprotocol list, for browsers.

A browser's `new WebSocket(url, protocols)` can set no header, and a `?token=` query parameter
ends up in proxy and access logs. So a browser may offer the token as a subprotocol:

    new WebSocket("wss://relay.example/private", ["wsrelay", "bearer." + token])

wsrelay reads the token from the `bearer.` entry and never selects that entry: the route lists
the other protocol (`"subprotocols": ["wsrelay"]`) and the handshake answers with it, as
browsers require an answer from the offered list. A token sent this way must consist of
subprotocol-safe characters (RFC 7230 token: letters, digits and !#$%&'*+-.^_`|~).
"""

from __future__ import annotations

from aiohttp import hdrs, web

PREFIX = "bearer."


def subprotocol_token(request: web.Request) -> str | None:
    """The token of the first `bearer.<token>` entry the client offered, if any."""
    for header in request.headers.getall(hdrs.SEC_WEBSOCKET_PROTOCOL, ()):
        for offered in header.split(","):
            offered = offered.strip()
            if offered.startswith(PREFIX) and len(offered) > len(PREFIX):
                return offered[len(PREFIX) :]
    return None
