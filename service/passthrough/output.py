"""`Output`: relayed frames written to the other side, counted, and the sender paused while
the receiver is over its high-water mark."""

from __future__ import annotations

import asyncio

from .state import TapState


class Output(TapState):
    """One write per chunk of relayed frames; counts on both sides; backpressure."""

    __slots__ = ()

    def _flush(
        self,
        out: bytes | bytearray | list[bytes | bytearray],
        texts: int,
        binaries: int,
        payload_bytes: int,
    ) -> None:
        """Write what the chunk forwarded in one write, count it on both sides, and pause the
        sender while the receiver is over its high-water mark."""
        src, dst = self._src, self._dst
        assert src is not None
        assert dst is not None
        if src._closing:  # this side's close has started: nothing more is relayed
            return
        traffic = src.traffic
        traffic.in_text += texts
        traffic.in_binary += binaries
        traffic.bytes_in += payload_bytes
        if not out:
            return
        if isinstance(out, list):
            out = out[0] if len(out) == 1 else b"".join(out)
        if not isinstance(out, bytes):
            out = bytes(out)  # what a receiver's Wire writes (and may hold on to)
        if dst.send_frames(out, texts, binaries, payload_bytes) and dst.wire._protocol._paused:
            self._pause()  # the receiver is over its high-water mark

    def _pause(self) -> None:
        """The receiver is over its high-water mark: stop reading the sender until it drains."""
        if self._paused:
            return
        src, dst = self._src, self._dst
        assert src is not None
        assert dst is not None
        self._paused = True
        src.wire.transport.pause_reading()
        drained = asyncio.ensure_future(dst.wire.drain())
        drained.add_done_callback(self._resume)

    def _resume(self, drained: asyncio.Future[None]) -> None:
        self._paused = False
        if not drained.cancelled():
            drained.exception()  # a receiver gone: its close ends the proxy
        assert self._src is not None
        transport = self._src.wire.transport
        if not transport.is_closing():
            transport.resume_reading()
