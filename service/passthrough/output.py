"""`Output`: relayed frames written to the other side, counted, and the sender paused while
the receiver is over its high-water mark."""

from __future__ import annotations

import asyncio

from .state import TapState


class Output(TapState):
    """One write per chunk of relayed frames; counts on both sides; backpressure.

    The receiver's wire is a plain `Wire` (`bridge` checks it), so a chunk goes to its
    transport directly, as `WebSocket.send_frames` would put it there, with the same checks:
    nothing after the receiver's close has started, a receiver over SEND_QUEUE_BYTES closed as
    a slow consumer (1008), the sender paused while the receiver is over its high-water mark.
    """

    __slots__ = ()

    def _flush(
        self,
        out: bytes | bytearray | list[bytes | bytearray],
        texts: int,
        binaries: int,
        payload_bytes: int,
    ) -> None:
        """The general path's chunk (pieces, or nothing but counts) as one write."""
        if isinstance(out, list):
            out = out[0] if len(out) == 1 else b"".join(out)
        self._emit(out, texts, binaries, payload_bytes)

    def _emit(self, out: bytes | bytearray, texts: int, binaries: int, payload_bytes: int) -> None:
        """Count what a read forwarded on both sides and write it to the receiver."""
        src = self._src
        assert src is not None
        if src._closing:  # this side's close has started: nothing more is relayed
            return
        traffic = src.traffic
        traffic.in_text += texts
        traffic.in_binary += binaries
        traffic.bytes_in += payload_bytes
        if not out:
            return
        dst = self._dst
        assert dst is not None
        transport = self._out
        # The peer may be gone before the receiver's reader has seen it: check the transport.
        if dst._closing or transport.is_closing():
            return
        if transport.get_write_buffer_size() > self._queue_limit:
            dst._slow_consumer()
            return
        # bytes: what uvloop holds on to without another view (a bytearray would get one)
        transport.write(out if type(out) is bytes else bytes(out))
        traffic = dst.traffic
        traffic.out_text += texts
        traffic.out_binary += binaries
        traffic.bytes_out += payload_bytes
        if self._out_protocol._paused:
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
