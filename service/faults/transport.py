"""The transport a faulted connection writes to: its `Outgoing` queue in front of the real one.

Whatever writes to the connection (its `Wire`, aiohttp's frame writer for compressed data and
close frames, a broadcast's pre-encoded frames) writes here, so every byte takes the fault path
and nothing overtakes a delayed frame. The write buffer it reports includes the queue, which is
what SEND_QUEUE_BYTES bounds. Ending the connection waits for the queue: `close` and
`write_eof` happen once what was queued before them (the close frame among it) has been
written; `abort` is at once. A hung connection ignores both, as a hung server would: only its
hang limit (or the process's exit) ends that TCP connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .outgoing import Outgoing


class FaultyTransport(asyncio.Transport):
    """An `asyncio.Transport` that writes through the connection's `Outgoing` queue."""

    __slots__ = ("_closing", "output", "real")

    def __init__(self, output: Outgoing) -> None:
        super().__init__()
        self.output = output
        self.real = output.transport
        self._closing = False

    # -- writing -------------------------------------------------------------------------------
    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._closing:
            return  # like asyncio's transports: writes after close() are ignored
        self.output.write(bytes(data))

    def writelines(self, list_of_data: Any) -> None:
        self.write(b"".join(list_of_data))

    def get_write_buffer_size(self) -> int:
        return self.output.buffered

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self.real.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self.real.set_write_buffer_limits(high, low)
        self.output.low, self.output.high = self.real.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self.real.can_write_eof()

    # -- ending --------------------------------------------------------------------------------
    def is_closing(self) -> bool:
        return self._closing or self.real.is_closing()

    def write_eof(self) -> None:
        if not self.output.hung:
            self.output.when_flushed(self._write_eof)

    def close(self) -> None:
        if self._closing or self.output.hung:
            return
        self._closing = True
        self.output.when_flushed(self._close)

    def abort(self) -> None:
        if self.output.hung:
            return  # a hung server drops nothing: only the hang limit does
        self._closing = True
        self.output.stop()  # what waits is never sent
        self.real.abort()

    def _write_eof(self) -> None:
        if not self.real.is_closing():
            self.real.write_eof()

    def _close(self) -> None:
        if not self.real.is_closing():
            self.real.close()

    # -- reading and the rest: the real transport's -------------------------------------------
    def is_reading(self) -> bool:
        return self.real.is_reading()

    def pause_reading(self) -> None:
        self.real.pause_reading()

    def resume_reading(self) -> None:
        if not self.output.hung:
            self.real.resume_reading()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.real.get_extra_info(name, default)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self.real.get_protocol()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.real.set_protocol(protocol)
