"""Handshake faults against the real process: bad values, the query's reach, reject, delay, seed."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
import websockets
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus

from tests.support import Metrics, Service, clean_env, run_wsrelay

pytestmark = pytest.mark.e2e

ROUTES = [
    {"path": "/echo", "mode": "echo"},
    {"path": "/faults", "mode": "echo", "query_overrides": True},
    {"path": "/slow", "mode": "echo", "faults": {"handshake_delay": "300ms"}},
    {"path": "/teapot", "mode": "echo", "faults": {"reject": 418}},
]


@pytest.fixture(scope="module")
def service() -> Any:
    with Service({"ROUTES": ROUTES}) as running:
        yield running


async def refusal(url: str) -> tuple[int, Headers, bytes]:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(url):
            pass
    response = refused.value.response
    return response.status_code, response.headers, bytes(response.body or b"")


async def echoes(url: str) -> bool:
    async with websockets.connect(url) as ws:
        await ws.send("ping?")
        return await ws.recv() == "ping?"


def series(metrics: Metrics, route: str) -> dict[str, float]:
    """The route's wsrelay_faults_injected_total series that exist, by fault."""
    family = metrics.families.get("wsrelay_faults_injected")
    samples = family.samples if family is not None else []
    return {s.labels["fault"]: s.value for s in samples if s.labels["route"] == route}


async def test_a_bad_value_gets_400_and_one_line_naming_it(service: Service) -> None:
    before = service.metrics().value(
        "wsrelay_handshakes_rejected_total", route="/faults", reason="bad_request"
    )
    status, _, body = await refusal(service.ws_url("/faults?delay=soon&drop=0.1"))
    assert status == 400
    assert body == b"delay: 'soon' is not a duration (expected e.g. 250ms, 2s or seconds)\n"
    status, _, body = await refusal(service.ws_url("/faults?fragment=2"))
    assert (status, body.count(b"\n")) == (400, 1)
    assert body.startswith(b"fragment: 2 is outside 16-")
    after = service.metrics().value(
        "wsrelay_handshakes_rejected_total", route="/faults", reason="bad_request"
    )
    assert after - before == 2
    # The application's own parameters pass untouched.
    assert await echoes(service.ws_url("/faults?room=7&token=abc&delay=1ms"))


async def test_the_query_is_ignored_without_query_overrides(service: Service) -> None:
    assert await echoes(service.ws_url("/echo?reject=503&delay=soon&handshake_delay=5s"))
    assert series(service.metrics(), "/echo") == {}


async def test_reject_refuses_with_the_status_and_retry_after_on_503_and_429(
    service: Service,
) -> None:
    before = service.metrics()
    status, headers, body = await refusal(service.ws_url("/faults?reject=503"))
    assert (status, headers.get("Retry-After"), body) == (
        503,
        "1",
        b"refused on purpose (reject=503)\n",
    )
    status, headers, _ = await refusal(service.ws_url("/faults?reject=429"))
    assert (status, headers.get("Retry-After")) == (429, "1")
    status, headers, _ = await refusal(service.ws_url("/teapot"))
    assert (status, "Retry-After" in headers) == (418, False)
    after = service.metrics()
    assert series(after, "/faults")["reject"] - series(before, "/faults")["reject"] == 2
    assert series(after, "/teapot") == {"reject": series(before, "/teapot")["reject"] + 1}

    def rejected(m: Metrics, route: str, reason: str) -> float:
        return m.value("wsrelay_handshakes_rejected_total", route=route, reason=reason)

    # 503 is SPEC's capacity refusal; 429 and 418 have no SPEC reason: counted as faults only.
    assert rejected(after, "/faults", "capacity") - rejected(before, "/faults", "capacity") == 1
    assert after.total("wsrelay_handshakes_rejected_total", route="/teapot") == before.total(
        "wsrelay_handshakes_rejected_total", route="/teapot"
    )


async def test_reject_rate_is_a_seeded_draw(service: Service) -> None:
    async def refused(seed: int) -> bool:
        url = service.ws_url(f"/faults?reject_rate=0.5&seed={seed}")
        try:
            async with websockets.connect(url):
                return False
        except InvalidStatus as error:
            statuses.add(error.response.status_code)
            return True

    statuses: set[int] = set()

    outcomes = [await refused(seed) for seed in range(40)]
    assert 5 <= sum(outcomes) <= 35, outcomes  # both happen, about half each
    again = [await refused(seed) for seed in range(40)]
    assert again == outcomes  # the same seed, the same choice
    assert statuses == {503}  # the status when reject is not given


async def test_handshake_delay_holds_the_answer(service: Service) -> None:
    before = series(service.metrics(), "/slow")
    assert before == {"handshake_delay": before["handshake_delay"]}  # initialised, alone
    started = time.monotonic()
    assert await echoes(service.ws_url("/slow"))
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    assert await echoes(service.ws_url("/faults?handshake_delay=200ms"))
    assert 0.2 <= time.monotonic() - started < 10
    after = service.metrics()
    assert series(after, "/slow")["handshake_delay"] - before["handshake_delay"] == 1


async def test_every_fault_series_exists_from_the_start_on_query_routes() -> None:
    with Service({"ROUTES": ROUTES}) as fresh:
        metrics = fresh.metrics()
        assert series(metrics, "/faults") == dict.fromkeys(
            (
                "delay",
                "drop",
                "close",
                "abort",
                "no_pong",
                "hang",
                "fragment",
                "throttle",
                "reject",
                "handshake_delay",
            ),
            0.0,
        )
        assert series(metrics, "/teapot") == {"reject": 0.0}
        assert series(metrics, "/echo") == {}


async def test_the_connect_line_carries_the_seed_to_replay_a_run() -> None:
    with Service({"ROUTES": ROUTES}) as fresh:
        for path in ("/faults?seed=42&jitter=1ms", "/faults?jitter=1ms", "/faults", "/echo?seed=3"):
            assert await echoes(fresh.ws_url(path))
        await asyncio.sleep(0.2)
        fresh.stop()
    connects = [e for e in fresh.log_events() if e.get("event") == "connect"]
    assert [e["path"] for e in connects] == ["/faults", "/faults", "/faults", "/echo"]
    assert connects[0]["seed"] == 42
    assert isinstance(connects[1]["seed"], int)
    assert "seed" not in connects[2]
    assert "seed" not in connects[3]


def test_a_routes_bad_faults_stop_the_process_before_it_listens() -> None:
    routes = [{"path": "/f", "mode": "echo", "faults": {"delay": "1h"}}]
    result = run_wsrelay("check-config", env=clean_env(WSRELAY_ROUTES=json.dumps(routes)))
    assert result.returncode == 1
    assert "WSRELAY_ROUTES[0].faults: delay: '1h' is not a duration" in result.stderr
    good = [{"path": "/f", "mode": "echo", "faults": {"delay": "50ms"}, "query_overrides": True}]
    result = run_wsrelay("check-config", env=clean_env(WSRELAY_ROUTES=json.dumps(good)))
    assert result.returncode == 0
    assert "faults" in result.stdout
    assert "query_overrides" in result.stdout


async def test_a_delayed_handshake_holds_its_place_under_the_cap_and_yields_to_a_drain() -> None:
    routes = [
        {
            "path": "/one",
            "mode": "echo",
            "max_connections": 1,
            "faults": {"handshake_delay": "600ms"},
        }
    ]
    env = {"ROUTES": routes, "SHUTDOWN_DELAY": "2", "SHUTDOWN_TIMEOUT": "6"}
    with Service(env) as fresh:
        first = asyncio.ensure_future(echoes(fresh.ws_url("/one")))
        await asyncio.sleep(0.2)  # the first waits out its delay, counted under the cap
        status, _, body = await refusal(fresh.ws_url("/one"))
        assert (status, body) == (503, b"at capacity, try again later\n")
        assert await first
        waiting = asyncio.ensure_future(refusal(fresh.ws_url("/one")))
        await asyncio.sleep(0.2)
        fresh.signal()  # the drain starts while that handshake waits
        status, _, body = await waiting
        assert (status, body) == (503, b"shutting down\n")
        assert fresh.wait() == 0
