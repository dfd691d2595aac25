"""Handshake middlewares: token auth and origin checks, run before the WebSocket upgrade.

They are ordinary aiohttp middlewares (`async def mw(request, handler)`), attached to a route
group, so a refused handshake never reaches the upgrade. Each refusal records its reason on the
request for the metrics (see `REJECT_REASON`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from .subprotocol_token import subprotocol_token

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

#: Why a handshake was refused: auth, origin, capacity, draining, bad_request.
REJECT_REASON = web.RequestKey("wsrelay_reject_reason", str)


def refuse(request: web.Request, reason: str, error: web.HTTPException) -> web.HTTPException:
    """Tag `error` with the refusal reason for the metrics and return it for raising."""
    request[REJECT_REASON] = reason
    return error


def bearer_token(request: web.Request) -> str | None:
    """The token a client presented: `Authorization: Bearer`, else the `token` query parameter,
    else a `bearer.<token>` subprotocol (see subprotocol_token).

    Browsers cannot set headers on a WebSocket handshake, hence the query parameter.
    """
    header = request.headers.get(hdrs.AUTHORIZATION, "")
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.query.get("token") or subprotocol_token(request)


def token_auth(tokens: Iterable[str]) -> Middleware:
    """Refuse with 401 unless the client presents one of `tokens`.

    Every token is compared in constant time, and all of them are compared, so neither the
    position of a match nor a common prefix shows in the response time.
    """
    accepted = [token.encode() for token in tokens]

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        presented = (bearer_token(request) or "").encode()
        matched = False
        for token in accepted:
            matched |= hmac.compare_digest(presented, token)
        if not matched:
            raise refuse(
                request,
                "auth",
                web.HTTPUnauthorized(
                    text="a valid bearer token is required\n",
                    headers={hdrs.WWW_AUTHENTICATE: 'Bearer realm="wsrelay"'},
                ),
            )
        return await handler(request)

    return middleware


def origin_matches(origin: str, allowed: Iterable[str]) -> bool:
    """Exact origins match exactly; `https://*.example.com` matches its subdomains (any depth)."""
    origin = origin.lower()
    for entry in allowed:
        entry = entry.lower()
        if "://*." not in entry:
            if origin == entry:
                return True
            continue
        scheme, _, rest = entry.partition("://*.")
        parts = urlsplit(origin)
        if parts.scheme != scheme or not parts.netloc.endswith("." + rest):
            continue
        return True
    return False


def origin_check(allowed: Iterable[str]) -> Middleware:
    """Refuse with 403 a browser handshake whose Origin is not allowed.

    Clients that send no Origin (non-browser tools) pass: the check protects browsers' users from
    cross-site WebSocket hijacking, which needs a browser, and a browser always sends Origin.
    """
    allowed = tuple(allowed)

    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and not origin_matches(origin, allowed):
            raise refuse(request, "origin", web.HTTPForbidden(text="origin not allowed\n"))
        return await handler(request)

    return middleware
