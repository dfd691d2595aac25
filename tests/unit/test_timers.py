"""The loop's timer heap (service/timers.py): one failing callback is logged, the rest run."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from service.timers import Timers


async def test_a_failing_callback_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken() -> None:
        raise RuntimeError("broken")

    loop = asyncio.get_running_loop()
    timers = Timers(loop)
    fired: list[int] = []
    now = loop.time()
    timers.call_at(now, functools.partial(fired.append, 0))
    timers.call_at(now, broken)
    timers.call_at(now + 0.01, functools.partial(fired.append, 1))
    with caplog.at_level(logging.ERROR, logger="wsrelay.timers"):
        await asyncio.sleep(0.05)
    assert fired == [0, 1]
    assert [(r.name, r.getMessage()) for r in caplog.records] == [
        ("wsrelay.timers", "timer callback failed")
    ]
    assert len(timers) == 0
