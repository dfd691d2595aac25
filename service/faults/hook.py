"""How a faulted connection plugs into the seed's `WebSocket`: its own `Wire` and transport.

`FaultyWebSocket` is a `WebSocket` whose frames all go through its `ConnectionFaults`: its
`Wire` (and aiohttp's frame writer, which writes compressed data and close frames) write to a
`FaultyTransport`, so every mode (echo, broadcast, stream, feed, proxy) is faulted without
knowing it, and a broadcast's pre-encoded frames are split back into messages for this member
only. It also tells its faults when a client message has been handled (close_after,
abort_after). A connection without such faults is a plain `WebSocket`: none of this runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import WSMsgType, web

from .. import closecodes
from ..keys import DRAIN
from ..timers import loop_timers
from ..websocket import Data, Observer, Options, Payload, WebSocket
from ..wire import Wire
from . import FAULT_COUNTER
from .connection import ConnectionFaults
from .outgoing import Count, Outgoing
from .params import Faults
from .transport import FaultyTransport


def _uncounted(fault: str) -> None:
    """Where injected faults go when nobody counts them (a connection outside a route)."""


class FaultyWire(Wire):
    """A `Wire` that writes through the connection's fault queue, with its backpressure."""

    __slots__ = ("output",)

    def attach(self, output: Outgoing) -> None:
        """From now on every byte goes through `output`, aiohttp's frame writer's too."""
        self.output = output
        self.transport = FaultyTransport(output)
        self._writer.transport = self.transport

    def write(self, opcode: int, payload: bytes) -> bool:
        paused = super().write(opcode, payload)
        return paused or self.output.over_high

    def write_frames(self, data: bytes) -> None:
        self.output.write(data)  # split back into messages: this member's own path

    def queued(self) -> int:
        return self.output.buffered

    async def compress(self, opcode: int, payload: bytes) -> None:
        if not self.output.dropped_before_compression():
            await super().compress(opcode, payload)

    async def drain(self) -> None:
        await self.output.wait_low()
        await super().drain()


class FaultyWebSocket(WebSocket):
    """A server connection with per-connection faults on what it sends (see the module)."""

    __slots__ = ("_act_after", "_answer_grace", "_answered", "_due", "_waiting", "faults")

    def __init__(
        self,
        ws: web.WebSocketResponse,
        faults: Faults,
        options: Options,
        observer: Observer | None = None,
        request: web.BaseRequest | None = None,
        count: Count = _uncounted,
    ) -> None:
        super().__init__(ws, options, observer, request)
        self._act_after = False
        #: Set on a proxy route (`answers_come_later`): the answers are the upstream's.
        self._answer_grace: float | None = None
        self._answered = 0
        self._due = 0
        self._waiting: asyncio.TimerHandle | None = None
        self.faults = ConnectionFaults(
            faults, self.wire.transport, loop_timers(), count, self._fault_close
        )
        self.faults.output.on_abort = self._fault_abort
        self.faults.on_hang_over = self._hang_over
        wire = FaultyWire.like(self.wire)
        wire.attach(self.faults.output)
        self.wire = wire

    def _count_in(self, data: Data) -> None:
        super()._count_in(data)
        if self.faults.message_received():
            self._act_after = True

    def answers_come_later(self, grace: float) -> None:
        """The answers to this client's messages come from elsewhere (a proxy's upstream):
        close_after and abort_after wait until the client has been sent as many messages as
        it sent, at most `grace` seconds after the Nth; what it sends meanwhile goes nowhere."""
        self._answer_grace = grace

    def send(self, data: Payload) -> asyncio.Future[None]:
        sent = super().send(data)
        if self._answer_grace is not None:
            self._answered += 1
            if self._waiting is not None and self._answered >= self._due:
                self._act_now()
        return sent

    def _deliver(self, msg: Any) -> bool:
        if self._waiting is not None and msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            self._count_in(msg.data)  # after the Nth: not passed on
            return True
        taken = super()._deliver(msg)  # the message's callback has run: its answer is out
        if self._act_after:
            self._act()
        return taken

    async def _received(self, kind: WSMsgType, data: Data) -> None:
        if self._waiting is not None:
            self._count_in(data)
            return
        await super()._received(kind, data)
        if self._act_after:
            self._act()

    def _act(self) -> None:
        """close_after / abort_after: the Nth message has been answered; the next ones will
        not be (a close stops the reading; an abort fails the sends)."""
        self._act_after = False
        if self._answer_grace is not None and self._answered < self.faults.received:
            self._due = self.faults.received
            self._waiting = self._loop.call_later(self._answer_grace, self._act_now)
            return
        self.faults.act()

    def _act_now(self) -> None:
        """The upstream's answers are out (or the grace is over): act on the Nth message."""
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        self.faults.act(self._due)

    def _slow_consumer(self) -> asyncio.Future[None]:
        # Cut: what waits for its delay is dropped, so the 1008 goes out now.
        self.faults.output.discard()
        return super()._slow_consumer()

    async def _linger(self, sent: bool | None, code: int, reason: str, failed: bool) -> None:
        faults = self.faults
        if faults.hanging:  # a hung server ends nothing: the hang's limit does (`_finish`)
            await faults.hang_ended()
            return
        # The close frame waits behind what is queued: the handshake's timeout starts once it
        # has been written (or once the close timeout has passed).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(faults.output.flushed(), self._options.close_timeout)
        await super()._linger(sent, code, reason, failed)

    def close(self, code: int = closecodes.NORMAL, reason: str = "") -> asyncio.Future[None]:
        if self.faults.hanging and self._draining():
            # The process is going away: its hung connections go now, not at their limit.
            self.faults.end_hang()
        return super().close(code, reason)

    def _draining(self) -> bool:
        """The process is shutting down (its drain is closing every connection)."""
        app = self.request.app if isinstance(self.request, web.Request) else None
        return app is not None and DRAIN in app and app[DRAIN].draining

    def _fault_close(self, code: int, reason: str) -> bool:
        if self._closing:
            return False
        self.close(code, reason)
        return True

    def _fault_abort(self) -> None:
        """The abort fault drops the link: this side started it, and 1006 is what it was."""
        if not self._closing:
            self._closing = True
            self.closed_by_peer = False
            self.close_code = closecodes.ABNORMAL

    def _hang_over(self) -> None:
        """The hang's limit (or the drain) dropped the TCP connection: this side did, 1006."""
        self._fault_abort()
        self._finish()

    def _finish(self) -> None:
        if self.faults.hanging:
            return  # the handler would return and end the TCP connection: after the hang
        if self._waiting is not None:
            self._waiting.cancel()
            self._waiting = None
        super()._finish()
        self.faults.stop()


def faulty_socket(
    ws: web.WebSocketResponse,
    faults: Faults,
    options: Options,
    observer: Observer | None,
    request: web.BaseRequest,
) -> WebSocket:
    """A `FaultyWebSocket` counting what it injects into its route's counter."""
    counter = request.get(FAULT_COUNTER)
    count = _uncounted if counter is None else counter.fault_injected
    return FaultyWebSocket(ws, faults, options, observer, request, count)
