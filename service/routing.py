"""WebSocket routes the seed's way: `@routes.websocket("/echo")` and groups behind middleware.

    routes = RouteTable()

    @routes.websocket("/echo")
    async def echo(request, ws):
        ws.on_text(lambda ws, text: ws.send(text))

    api = routes.group("/api", middlewares=[token_auth(["s3cret"])])

    @api.websocket("/chat")
    async def chat(request, ws): ...

    app.add_routes(routes)

A handler gets the request and the connected `WebSocket`. Like Vapor's closure it may set
callbacks and return: the connection stays open and its messages go to the callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from functools import reduce

from aiohttp import hdrs, web

from . import closecodes
from .faults import FAULTS_KEY
from .faults.hook import faulty_socket
from .middlewares import REJECT_REASON, Handler, Middleware, refuse
from .websocket import DEFAULT_OPTIONS, Observer, Options, WebSocket
from .wire import GuardedResponse

log = logging.getLogger("wsrelay.routing")

WebSocketHandler = Callable[[web.Request, WebSocket], Awaitable[None]]


#: Where the innermost handshake step leaves the accepted WebSocket for the endpoint.
_ACCEPTED = web.RequestKey("wsrelay_accepted", WebSocket)


async def accept(
    request: web.Request, options: Options = DEFAULT_OPTIONS, observer: Observer | None = None
) -> WebSocket:
    """Complete the handshake of `request`; a request that is no upgrade gets 426."""
    raw = GuardedResponse(
        protocols=options.protocols,
        compress=options.compress,
        # aiohttp refuses a message of exactly max_msg_size; our limit is inclusive.
        max_msg_size=options.max_message_bytes + 1,
        autoclose=False,
        autoping=False,
        timeout=options.close_timeout,
    )
    if not raw.can_prepare(request).ok:
        raise refuse(
            request,
            "bad_request",
            web.HTTPUpgradeRequired(
                text="this is a WebSocket endpoint: connect with a WebSocket client\n",
                headers={hdrs.UPGRADE: "websocket", hdrs.CONNECTION: "Upgrade"},
            ),
        )
    try:
        await raw.prepare(request)
    except web.HTTPException as error:  # a malformed handshake: aiohttp answers 400
        request[REJECT_REASON] = "bad_request"
        raise error
    faults = request.get(FAULTS_KEY)
    if faults is None or faults.sends_plain:
        ws = WebSocket(raw, options, observer, request=request)
    else:  # a connection with faults on what it sends (the plain path pays nothing for them)
        ws = faulty_socket(raw, faults, options, observer, request)
    if options.greeting is not None:
        ws.send(options.greeting)
    return ws


def websocket_endpoint(
    handler: WebSocketHandler,
    *,
    options: Options = DEFAULT_OPTIONS,
    observer: Observer | None = None,
    middlewares: Sequence[Middleware] = (),
) -> Handler:
    """An aiohttp handler: `middlewares` around the handshake, then `handler` on the socket.

    The middlewares wrap the upgrade only, not the life of the connection: every message
    resumes the connection's task through each frame that awaits, so the message loop runs
    outside theirs. A middleware that needs the end of the connection uses `ws.on_close`.
    """

    async def upgrade(request: web.Request) -> web.StreamResponse:
        ws = await accept(request, options, observer)
        request[_ACCEPTED] = ws
        return ws.http_response

    def wrap(inner: Handler, middleware: Middleware) -> Handler:
        async def call(request: web.Request) -> web.StreamResponse:
            return await middleware(request, inner)

        return call

    innermost: Handler = upgrade
    handshake = reduce(wrap, reversed(middlewares), innermost)

    async def endpoint(request: web.Request) -> web.StreamResponse:
        response = await handshake(request)
        ws = request.pop(_ACCEPTED, None)
        if ws is None:
            return response  # a middleware answered without upgrading
        try:
            # Like Vapor's closure, the handler may set callbacks and return: keep reading.
            await handler(request, ws)
            if not ws.closed:
                await ws.run()
        except ConnectionError:
            pass  # the peer went away while the handler was sending: a normal end
        except Exception:
            log.exception("handler failed", extra={"path": request.path})
            ws.close(closecodes.INTERNAL_ERROR, "internal error")
        finally:
            if not ws.closed:
                ws.close()
        await ws.wait_closed()
        return response

    return endpoint


class RouteGroup:
    """Routes under one path prefix that share middlewares (auth, origin checks, ...)."""

    def __init__(
        self, table: RouteTable, prefix: str, middlewares: Sequence[Middleware] = ()
    ) -> None:
        self._table = table
        self.prefix = prefix.rstrip("/")
        self.middlewares = tuple(middlewares)

    def websocket(
        self,
        path: str,
        *,
        options: Options = DEFAULT_OPTIONS,
        observer: Observer | None = None,
        middlewares: Sequence[Middleware] = (),
        name: str | None = None,
    ) -> Callable[[WebSocketHandler], WebSocketHandler]:
        """Decorator: serve WebSocket connections on `prefix + path` with the handler."""
        return self._table.websocket(
            self.prefix + path,
            options=options,
            observer=observer,
            middlewares=(*self.middlewares, *middlewares),
            name=name,
        )

    def group(self, prefix: str, *, middlewares: Sequence[Middleware] = ()) -> RouteGroup:
        """A nested group: its prefix and middlewares come after this group's."""
        return RouteGroup(self._table, self.prefix + prefix, (*self.middlewares, *middlewares))


class RouteTable(web.RouteTableDef):
    """An aiohttp route table (`app.add_routes(table)`) that also holds WebSocket routes."""

    def websocket(
        self,
        path: str,
        *,
        options: Options = DEFAULT_OPTIONS,
        observer: Observer | None = None,
        middlewares: Sequence[Middleware] = (),
        name: str | None = None,
    ) -> Callable[[WebSocketHandler], WebSocketHandler]:
        """Decorator: serve WebSocket connections on `path` with the decorated handler."""

        def register(handler: WebSocketHandler) -> WebSocketHandler:
            endpoint = websocket_endpoint(
                handler, options=options, observer=observer, middlewares=middlewares
            )
            self.get(path, name=name, allow_head=False)(endpoint)
            return handler

        return register

    def group(self, prefix: str, *, middlewares: Sequence[Middleware] = ()) -> RouteGroup:
        """Routes under `prefix` behind `middlewares`, run before the upgrade."""
        return RouteGroup(self, prefix, middlewares)
