"""The outbound client pool: one aiohttp ClientSession and the connections of every upstream.

Per upstream (`UpstreamPool`): at most `max_connections` connections (each feed route on it
holds one for good); `min_idle` of them kept pre-connected for proxy routes and handed out at
once; a client that finds the pool full waits up to `acquire_timeout`, then gets 1013; a
connect that fails or takes longer than `connect_timeout` gives the client 1014. Pre-connected
connections and feeds reconnect with exponential backoff and full jitter (`backoff.py`); every
connection runs keepalive pings whose round trips feed `wsrelay_upstream_ping_rtt_seconds`.

Readiness (`ClientPool.readiness`): a route marked `required` makes /readyz answer 503 while its
upstream is down. For a feed route that is its shared connection; for a proxy route it is the
last connect to the upstream, and the pool keeps at least one connection pre-connected to such
an upstream so the answer stays current without client traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from . import closecodes, tls
from .backoff import Backoff
from .feedsource import FeedSource
from .metrics import Metrics
from .settings import Route, Settings, Upstream
from .upstream import CONNECT_ERRORS, Link, UpstreamUnavailable, failure_reason
from .upstream_metrics import SilentUpstreamMetrics, UpstreamMetrics
from .websocket import Options, WebSocket, new_session

log = logging.getLogger("wsrelay.pool")

__all__ = ["ClientPool", "UpstreamPool", "UpstreamUnavailable"]

#: On shutdown, how long upstreams get to answer our close frames before their sockets drop.
CLOSE_GRACE = 0.3
#: A connection that stayed up this many backoff_initial periods resets its backoff.
STABLE_FACTOR = 5


def upstream_options(config: Upstream, routes: list[Route], settings: Settings) -> Options:
    """Limits of the upstream's connections: the largest message any of its routes allows."""
    limits = [route.max_message_bytes or settings.max_message_bytes for route in routes]
    return Options(
        max_message_bytes=max(limits, default=settings.max_message_bytes),
        send_queue_bytes=settings.send_queue_bytes,
        ping_interval=config.ping_interval,
        ping_timeout=settings.ping_timeout,
    )


class UpstreamPool:
    """The connections of one named upstream."""

    def __init__(
        self,
        name: str,
        config: Upstream,
        options: Options,
        metrics: UpstreamMetrics,
        *,
        reserved: int = 0,
        keep_idle: int = 0,
    ) -> None:
        self.name = name
        self.config = config
        self.options = options
        self.metrics = metrics
        #: Connections proxies and idle links may use: feed routes hold the rest.
        self.capacity = max(0, config.max_connections - reserved)
        self.keep_idle = min(keep_idle, self.capacity)
        #: The outcome of the last connect (None before the first).
        self.healthy: bool | None = None
        self.stable_after = config.backoff_initial * STABLE_FACTOR
        self._headers = CIMultiDict(config.headers)
        self._session: aiohttp.ClientSession | None = None
        self._count = 0  # proxied and idle connections, open or opening
        self._idle: deque[Link] = deque()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._changed = asyncio.Event()
        self._backoff = Backoff(config.backoff_initial, config.backoff_max)
        self._pause = False
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False
        #: Every open link of this upstream, idle, proxied or feeding.
        self.links: set[Link] = set()

    def is_healthy(self) -> bool:
        return self.healthy is True

    def start(self, session: aiohttp.ClientSession) -> None:
        self._session = session
        if self.keep_idle:
            self._keeper = asyncio.ensure_future(self._keep())

    # -- opening -------------------------------------------------------------------------------
    async def connect(
        self, protocol: str | None, headers: Mapping[str, str] | None, state: str
    ) -> Link:
        """Open one connection (the caller accounts for its slot); counts time and failures."""
        assert self._session is not None, "the pool is not started"
        merged: CIMultiDict[str] = CIMultiDict(headers or {})
        merged.update(self._headers)  # the operator's headers win over forwarded ones
        connecting = self.metrics.states["connecting"]
        connecting.inc()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            ws = await WebSocket.connect(
                self.config.url,
                session=self._session,
                headers=dict(merged),
                protocols=(protocol,) if protocol else (),
                options=self.options,
                observer=self.metrics,
                connect_timeout=self.config.connect_timeout,
            )
        except CONNECT_ERRORS as error:
            reason = failure_reason(error)
            self.healthy = False
            self.metrics.failed(reason)
            log.warning(
                "upstream connect failed",
                extra={
                    "event": "upstream_failed",
                    "upstream": self.name,
                    "reason": reason,
                    "error": type(error).__name__,
                },
            )
            raise UpstreamUnavailable(closecodes.BAD_GATEWAY, "upstream unreachable") from error
        finally:
            connecting.dec()
        self.healthy = True
        self.metrics.connected(loop.time() - started)
        link = Link(ws, self.metrics.states, state)
        self.links.add(link)
        ws.on_close.add_done_callback(lambda _: self.links.discard(link))
        return link

    async def acquire(self, protocol: str | None, headers: Mapping[str, str] | None) -> Link:
        """A connection for one proxied client: idle if one fits, else a new one.

        Raises UpstreamUnavailable: 1013 when the pool stays full for acquire_timeout, 1014 when
        the connect fails. A client with a subprotocol needs a connection opened for it.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.acquire_timeout
        while True:
            if self._closing:
                raise UpstreamUnavailable(closecodes.GOING_AWAY, "shutting down")
            if protocol is None:
                link = self._take_idle()
                if link is not None:
                    return link
            if self._count < self.capacity:
                return await self._open_slot(protocol, headers, "active")
            if protocol is not None and self._idle:
                self._idle.popleft().ws.close(closecodes.GOING_AWAY, "making room")
            await self._wait_for_slot(deadline)

    async def _open_slot(
        self, protocol: str | None, headers: Mapping[str, str] | None, state: str
    ) -> Link:
        self._count += 1
        try:
            link = await self.connect(protocol, headers, state)
        except BaseException:
            self._free_slot()
            raise
        link.ws.on_close.add_done_callback(self._free_slot)
        return link

    def _take_idle(self) -> Link | None:
        while self._idle:
            link = self._idle.popleft()
            if not link.ws.closed:
                link.move("active")
                self._backoff.reset()
                self._changed.set()  # the keeper tops the idle connections up again
                return link
        return None

    async def _wait_for_slot(self, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        try:
            if remaining <= 0:
                raise TimeoutError
            async with asyncio.timeout(remaining):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # woken as the clock ran out: pass the wake on
            self.metrics.failed("pool_exhausted")
            raise UpstreamUnavailable(
                closecodes.TRY_AGAIN_LATER, "upstream pool exhausted"
            ) from None
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(waiter)

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _free_slot(self, _: object = None) -> None:
        self._count -= 1
        self._wake_one()
        self._changed.set()

    # -- pre-connected links -------------------------------------------------------------------
    async def _keep(self) -> None:
        """Keep `keep_idle` connections open and unclaimed; back off while the upstream fails."""
        while not self._closing:
            if len(self._idle) >= self.keep_idle or self._count >= self.capacity:
                self._changed.clear()
                await self._changed.wait()
                continue
            if self._pause:
                self._pause = False
                await asyncio.sleep(self._backoff.next())
                continue
            try:
                link = await self._open_slot(None, None, "idle")
            except UpstreamUnavailable:
                self._pause = True
                continue
            except Exception:  # a bug must not stop the keeper for good: log it, retry later
                log.exception("idle connect failed", extra={"upstream": self.name})
                self._pause = True
                continue
            link.on_end = self._idle_ended
            self._idle.append(link)
            self._wake_one()

    def _idle_ended(self, link: Link) -> None:
        """An unclaimed link closed: replace it, at once if it had been up for a while."""
        try:
            self._idle.remove(link)
        except ValueError:
            return  # closed by `acquire` to make room: no failure, its slot frees itself
        if link.ws.age >= self.stable_after:
            self._backoff.reset()
        else:
            self._pause = True
        self._changed.set()

    # -- closing -------------------------------------------------------------------------------
    def close(self) -> list[asyncio.Future[int]]:
        """Start closing every connection (1001); the futures complete as each one ends."""
        self._closing = True
        if self._keeper is not None:
            self._keeper.cancel()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)  # they see `_closing` and give up
        for link in self.links:
            link.ws.close(closecodes.GOING_AWAY, "wsrelay shutting down")
        return [link.ws.on_close for link in self.links]

    def tasks(self) -> list[asyncio.Future[None]]:
        keeper = [self._keeper] if self._keeper is not None else []
        return [*keeper, *(link.task for link in self.links)]


class ClientPool:
    """Every upstream of WSRELAY_UPSTREAMS on one ClientSession, plus the feeds they serve."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.upstreams: dict[str, UpstreamPool] = {}
        self.feeds: list[FeedSource] = []
        self._required: list[tuple[Route, Callable[[], bool]]] = []
        self._session: aiohttp.ClientSession | None = None
        self._ca_file = settings.upstream_ca_file
        kind = UpstreamMetrics if metrics.enabled else SilentUpstreamMetrics
        for name, config in settings.upstreams.items():
            routes = [route for route in settings.routes if route.upstream == name]
            proxies = [route for route in routes if route.mode == "proxy"]
            keep_idle = config.min_idle if proxies else 0
            if any(route.required for route in proxies):
                keep_idle = max(keep_idle, 1)  # the health check of a required upstream
            self.upstreams[name] = UpstreamPool(
                name,
                config,
                upstream_options(config, routes, settings),
                kind(metrics, name),
                reserved=len(routes) - len(proxies),
                keep_idle=keep_idle,
            )
            self._required += [
                (route, self.upstreams[name].is_healthy) for route in proxies if route.required
            ]

    def upstream(self, name: str) -> UpstreamPool:
        return self.upstreams[name]

    def feed(self, route: Route, deliver: Callable[[int, bytes], None]) -> FeedSource:
        """The shared upstream connection of feed route `route`, delivering to `deliver`."""
        assert route.upstream is not None
        pool = self.upstreams[route.upstream]
        source = FeedSource(route, pool.connect, deliver, pool.config, pool.stable_after)
        self.feeds.append(source)
        if route.required:
            self._required.append((route, source.is_up))
        return source

    def readiness(self) -> str | None:
        """Why /readyz must say 503: a required route's upstream is down (None when all are up)."""
        down = [
            f"upstream {route.upstream} of {route.path} unreachable"
            for route, up in self._required
            if not up()
        ]
        return "; ".join(down) or None

    async def start(self) -> None:
        # No connector limit (the pool enforces its own), no total timeout on a connection, and
        # wss:// verified against the system CAs plus UPSTREAM_CA_FILE.
        self._session = new_session(
            connector=aiohttp.TCPConnector(limit=0, ssl=tls.upstream_context(self._ca_file)),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        for pool in self.upstreams.values():
            pool.start(self._session)
        for source in self.feeds:
            source.start()

    async def close(self) -> None:
        """Close every upstream connection with 1001, stop every task, close the session."""
        closing = [future for source in self.feeds for future in source.close()]
        for pool in self.upstreams.values():
            closing += pool.close()
        if closing:
            await asyncio.wait(closing, timeout=CLOSE_GRACE)
        for pool in self.upstreams.values():
            for link in list(pool.links):
                link.ws.abort(closecodes.GOING_AWAY, "wsrelay shutting down")
        tasks: list[asyncio.Future[None]] = [
            task for pool in self.upstreams.values() for task in pool.tasks()
        ]
        tasks += [source.task for source in self.feeds if source.task is not None]
        if tasks:  # pumps end by themselves once their sockets are gone
            await asyncio.wait(tasks, timeout=CLOSE_GRACE)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        """For `app.cleanup_ctx`: started with the app, closed when it stops."""
        await self.start()
        yield
        await self.close()
