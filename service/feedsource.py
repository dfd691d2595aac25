"""The one shared upstream connection of a feed route, kept open with backoff.

What the upstream sends is handed to `deliver(opcode, payload)` (the feed mode writes it to
every client of the route with one encode). While the upstream is down the clients stay
connected and simply hear nothing; `resubscribe` is sent on every (re)connect so upstreams
that need a subscribe message resume by themselves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

from . import closecodes, frames
from .backoff import Backoff
from .settings import Route, Upstream
from .upstream import Link, UpstreamUnavailable
from .websocket import Data, Payload

log = logging.getLogger("wsrelay.feed")

Connect = Callable[[str | None, Mapping[str, str] | None, str], Awaitable[Link]]
Deliver = Callable[[int, bytes], None]


class FeedSource:
    """Connects, relays until the connection ends, waits a backoff delay, and again."""

    def __init__(
        self,
        route: Route,
        connect: Connect,
        deliver: Deliver,
        config: Upstream,
        stable_after: float,
    ) -> None:
        self.route = route
        self._connect = connect
        self._deliver = deliver
        self._stable_after = stable_after
        self._backoff = Backoff(config.backoff_initial, config.backoff_max)
        self.link: Link | None = None
        self.task: asyncio.Task[None] | None = None
        self._closing = False

    def is_up(self) -> bool:
        link = self.link
        return link is not None and not link.ws.closed

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._run())

    def send(self, data: Payload) -> asyncio.Future[None] | None:
        """Send `data` upstream (`forward: true`); None while the upstream is down."""
        link = self.link
        if link is None or link.ws.closed:
            return None
        return link.ws.send(data)

    def _relay(self, data: Data) -> None:
        # Queued for the room (written at the end of the loop pass, `Backplane.deliver`), so a
        # client's failing socket never reaches the upstream connection every client shares.
        if isinstance(data, str):
            self._deliver(frames.OP_TEXT, data.encode())
        else:
            self._deliver(frames.OP_BINARY, data)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                link = await self._connect(None, None, "active")
            except UpstreamUnavailable:
                await asyncio.sleep(self._backoff.next())
                continue
            except Exception:  # a bug must not end the feed for good: log it, retry later
                log.exception("feed connect failed", extra={"route": self.route.path})
                await asyncio.sleep(self._backoff.next())
                continue
            ended: asyncio.Future[None] = loop.create_future()

            def end(_: Link, ended: asyncio.Future[None] = ended) -> None:
                if not ended.done():
                    ended.set_result(None)

            self.link = link
            log.info("feed connected", extra={"event": "feed_connected", "route": self.route.path})
            if self.route.resubscribe is not None:
                link.ws.send(self.route.resubscribe)
            link.attach(self._relay, end)
            await ended
            self.link = None
            if link.ws.age >= self._stable_after:
                self._backoff.reset()
            if self._closing:
                return
            log.warning(
                "feed upstream lost",
                extra={"event": "feed_lost", "route": self.route.path, "code": link.ws.close_code},
            )
            await asyncio.sleep(self._backoff.next())

    def close(self) -> list[asyncio.Future[int]]:
        """Stop reconnecting and close the connection (1001)."""
        self._closing = True
        if self.task is not None:
            self.task.cancel()
        link = self.link
        if link is None:
            return []
        link.ws.close(closecodes.GOING_AWAY, "wsrelay shutting down")
        return [link.ws.on_close]
