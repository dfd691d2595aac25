"""The client side of `WebSocket.connect`: opening the connection and `Connecting`, which is
awaited (`ws = await WebSocket.connect(url)`) or used as an async context manager."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Generator
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp

from .wire import DirectClientResponse, adopt_session, client_max_msg_size

if TYPE_CHECKING:
    from .websocket import Observer, Options, WebSocket


def new_session(**kwargs: Any) -> aiohttp.ClientSession:
    """A client session whose WebSockets have the frame reader's fast path and the lingering
    close (see reading.py, closing.py)."""
    return aiohttp.ClientSession(ws_response_class=DirectClientResponse, **kwargs)


async def open_client(
    cls: type[WebSocket],
    url: str,
    session: aiohttp.ClientSession | None,
    headers: dict[str, str] | None,
    protocols: tuple[str, ...],
    options: Options,
    observer: Observer | None,
    connect_timeout: float,
) -> WebSocket:
    """Open a client connection; without `session`, the WebSocket owns a session of its own."""
    owned = session is None
    if session is None:
        client = new_session()
    else:
        client = session
        adopt_session(client)
    limit = client_max_msg_size.set(options.max_message_bytes + 1)
    try:
        async with asyncio.timeout(connect_timeout):
            raw = await client.ws_connect(
                url,
                headers=headers,
                protocols=protocols or options.protocols,
                autoclose=False,
                autoping=False,
                max_msg_size=options.max_message_bytes + 1,  # inclusive, see routing
                compress=15 if options.compress else 0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=options.close_timeout),
            )
    except BaseException:
        if owned:
            await client.close()
        raise
    finally:
        client_max_msg_size.reset(limit)
    if isinstance(raw, DirectClientResponse):
        raw.adopt()
    return cls(raw, options, observer, owned_session=client if owned else None)


class Connecting:
    """What `WebSocket.connect` returns: await it, or use it as an async context manager."""

    __slots__ = ("_coro", "_ws")

    def __init__(self, coro: Awaitable[WebSocket]) -> None:
        self._coro = coro
        self._ws: WebSocket | None = None

    def __await__(self) -> Generator[Any, None, WebSocket]:
        return self._coro.__await__()

    async def __aenter__(self) -> WebSocket:
        self._ws = await self._coro
        return self._ws

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._ws is not None:
            await self._ws.close()
            await self._ws.wait_closed()
