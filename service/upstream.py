"""One outbound connection to an upstream (`Link`) and why a connect failed (`failure_reason`).

Every upstream connection has exactly one reader, its link's pump task (`WebSocket.run` with
callbacks), started when the connection opens and ended when it closes: no task per message and
none per hand-over. What the upstream sends goes to the link's sink (a proxied client's `send`,
whose pending future holds the upstream's next messages, so a slow client slows the reading of
its upstream, or a feed's fan-out). A pre-connected link has no
sink yet; what arrives meanwhile (an upstream's greeting) is held and handed over first.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

import aiohttp
from prometheus_client import Gauge

from . import closecodes
from .websocket import Data, WebSocket

log = logging.getLogger("wsrelay.upstream")

#: Takes one upstream message; may return a future to await before reading the next.
Sink = Callable[[Data], "asyncio.Future[None] | None"]
#: Called once when the link's upstream connection has ended.
EndCallback = Callable[["Link"], object]

#: Bytes an idle link holds for the client it is not handed to yet; past it the link is closed.
HOLD_LIMIT_BYTES = 1 << 20


class UpstreamUnavailable(Exception):
    """No upstream connection for a client; `code` is what the client is closed with."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def failure_reason(error: BaseException) -> str:
    """The `wsrelay_upstream_failures_total` reason of a failed connect (socket-free)."""
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, aiohttp.ClientResponseError):  # a handshake answered with an HTTP error
        return "refused"
    if isinstance(error, aiohttp.ClientSSLError | ssl.SSLError):
        return "tls"
    return "unreachable"


#: What a connect may fail with, as opposed to a bug.
CONNECT_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


def _ignore_end(link: Link) -> None:
    """The end callback of a link nobody has claimed."""


class Link:
    """An open upstream connection, its pump, and its state in `wsrelay_upstream_connections`."""

    __slots__ = (
        "_held",
        "_held_bytes",
        "_sink",
        "_states",
        "on_end",
        "state",
        "task",
        "ws",
    )

    def __init__(self, ws: WebSocket, states: dict[str, Gauge], state: str) -> None:
        self.ws = ws
        self._states = states
        self.state = state
        states[state].inc()
        self._sink: Sink | None = None
        self._held: list[Data] = []
        self._held_bytes = 0
        #: Called when the connection has ended; `attach` sets it, the pool sets it for idle links.
        self.on_end: EndCallback = _ignore_end
        ws.on_close.add_done_callback(self._closed)
        self.task = asyncio.ensure_future(self._pump())

    def move(self, state: str) -> None:
        """Idle -> active when handed to a client."""
        self._states[self.state].dec()
        self._states[state].inc()
        self.state = state

    def attach(self, sink: Sink, on_end: EndCallback) -> None:
        """Hand the link over: held messages first, then everything the upstream sends."""
        for data in self._held:
            pending = sink(data)
            if pending is not None and not pending.done():
                pending.add_done_callback(_retrieve)
        self._held.clear()
        self._held_bytes = 0
        self._sink = sink
        self.on_end = on_end
        if self.task.done():  # the upstream went away before the hand-over
            on_end(self)

    async def _pump(self) -> None:
        ws = self.ws
        ws.on_text(self._forward)
        ws.on_binary(self._forward)
        try:
            await ws.run()
        except Exception:
            log.exception("upstream pump failed")
            ws.abort()
        finally:
            self.on_end(self)

    def _forward(self, _: WebSocket, data: Data) -> asyncio.Future[None] | None:
        """What the upstream sends: to the sink, whose pending future paces this reading."""
        sink = self._sink
        if sink is None:
            self._hold(data)
            return None
        return sink(data)

    def _hold(self, data: Data) -> None:
        self._held.append(data)
        self._held_bytes += len(data)
        if self._held_bytes > HOLD_LIMIT_BYTES:
            self._held.clear()
            self._held_bytes = 0
            self.ws.close(closecodes.POLICY_VIOLATION, "unsolicited messages on an idle connection")

    def _closed(self, _: object) -> None:
        self._states[self.state].dec()
