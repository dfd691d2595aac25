"""One value per event loop (service/perloop.py), on real event loops, and its three users."""

from __future__ import annotations

import asyncio

import pytest

from service import websocket
from service.modes.stream import loop_wheel
from service.perloop import PerLoop
from service.timers import Timers, loop_timers


def test_each_loop_gets_its_own_value_made_once() -> None:
    made: list[asyncio.AbstractEventLoop] = []

    def make(loop: asyncio.AbstractEventLoop) -> list[asyncio.AbstractEventLoop]:
        made.append(loop)
        return [loop]

    per_loop = PerLoop(make)
    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        value = per_loop.get(first)
        assert per_loop.get(first) is value
        assert per_loop.get(second) == [second]
        assert per_loop.get(first) is value
        assert made == [first, second]
        assert len(per_loop) == 2
    finally:
        first.close()
        second.close()


def test_the_running_loop_is_the_default() -> None:
    per_loop = PerLoop(lambda loop: [loop])

    async def both() -> tuple[list[asyncio.AbstractEventLoop], list[asyncio.AbstractEventLoop]]:
        return per_loop.get(), per_loop.get(asyncio.get_running_loop())

    loop = asyncio.new_event_loop()
    try:
        default, explicit = loop.run_until_complete(both())
    finally:
        loop.close()
    assert default is explicit
    assert default == [loop]


def test_without_a_running_loop_there_is_no_default() -> None:
    with pytest.raises(RuntimeError):
        PerLoop(lambda loop: [loop]).get()


def test_closed_loops_are_dropped_when_a_new_loop_gets_its_value() -> None:
    per_loop = PerLoop(lambda loop: [loop])
    closed, still_open, new = (asyncio.new_event_loop() for _ in range(3))
    try:
        per_loop.get(closed)
        per_loop.get(still_open)
        closed.close()
        per_loop.get(still_open)  # a known loop: nothing is made, nothing dropped
        assert len(per_loop) == 2
        per_loop.get(new)
        assert len(per_loop) == 2  # closed gone, still_open and new kept
        before = per_loop.get(still_open)
        assert per_loop.get(still_open) is before
    finally:
        for loop in (closed, still_open, new):
            loop.close()


async def test_a_loop_shares_one_timer_heap_one_wheel_and_one_keepalive_scheduler() -> None:
    loop = asyncio.get_running_loop()
    timers = loop_timers()
    assert isinstance(timers, Timers)
    assert loop_timers(loop) is timers
    wheel = loop_wheel()
    assert loop_wheel() is wheel
    assert wheel._timers is timers  # the stream wheel's slots go on the same heap
    shared = websocket._loop_shared(loop)
    assert websocket._loop_shared(loop) is shared
    assert shared.done.done()
    assert shared.done.result() is None


def test_another_loop_gets_other_ones() -> None:
    async def users() -> tuple[object, object, object]:
        loop = asyncio.get_running_loop()
        return loop_timers(), loop_wheel(), websocket._loop_shared(loop)

    first, second = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        one = first.run_until_complete(users())
        other = second.run_until_complete(users())
    finally:
        first.close()
        second.close()
    assert all(a is not b for a, b in zip(one, other, strict=True))
