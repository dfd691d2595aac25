"""One value per event loop, made on first use: the loop's shared keepalive scheduler, timer
heap and stream wheel.

Each is looked up once per connection, so `get` is a dict get on the hot path; a value is
made only for a loop seen for the first time, and that is when the values of loops closed
since are dropped (a process has one loop; tests open and close many).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """`make(loop)` once per event loop; `get(loop)` returns that loop's value."""

    __slots__ = ("_make", "_values")

    def __init__(self, make: Callable[[asyncio.AbstractEventLoop], T]) -> None:
        self._make = make
        self._values: dict[asyncio.AbstractEventLoop, T] = {}

    def __len__(self) -> int:
        """Loops with a value (tests read it)."""
        return len(self._values)

    def get(self, loop: asyncio.AbstractEventLoop | None = None) -> T:
        """The value of `loop` (the running loop by default), made on first use."""
        if loop is None:
            loop = asyncio.get_running_loop()
        value = self._values.get(loop)
        if value is None:
            value = self._new(loop)
        return value

    def _new(self, loop: asyncio.AbstractEventLoop) -> T:
        values = self._values
        for closed in [known for known in values if known.is_closed()]:
            del values[closed]
        value = values[loop] = self._make(loop)
        return value
