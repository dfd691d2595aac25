"""Autobahn|Testsuite cases 1-11 against every side of wsrelay: 0 FAILED.

- the echo route, as a server (wstest's fuzzing client connects to `wsrelay serve`);
- a proxy route relaying to an echo upstream (a relay must not break conformance either way);
- wsrelay's own client, `WebSocket.connect`, against wstest's fuzzing server.

The four runs start at once, one thread each (see `Runs`): each waits mostly on wstest's own
pauses, so side by side they take about as long as the slowest alone (23 s here, against 58 s
one after the other). Each test still asserts on its own run only.

Routes here turn keepalive pings off: wstest records every frame it receives, so an unsolicited
ping in a long case would count against the case without meaning anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.churn.observe import check_config, tracebacks
from tests.conformance.autobahn import (
    COMPRESSION_SMOKE_CASES,
    AutobahnUnavailable,
    Report,
    echo_route,
    fuzzingserver,
    run_fuzzingclient,
    wstest_path,
)
from tests.conformance.client import run_client_cases
from tests.support import Service

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

#: Cases 1-11 number 301 with this wstest; fewer means the run stopped short.
CORE_CASE_COUNT = 301


@pytest.fixture(scope="session")
def wstest() -> Path:
    try:
        return wstest_path()
    except AutobahnUnavailable as error:
        pytest.skip(f"Autobahn|Testsuite is not available here: {error}")


def assert_conformant(report: Report, expected_cases: int) -> None:
    assert not report.failed, report.summary()
    assert len(report.results) == expected_cases, report.summary()


def assert_healthy(service: Service) -> None:
    """Still running, and nothing a peer did was logged as a crash."""
    assert service.process is not None
    assert service.process.poll() is None, service.stderr
    assert not tracebacks(service.stderr), service.stderr


def run_echo_route(wstest: Path, workdir: Path) -> None:
    with Service({"ROUTES": [echo_route()]}) as service:
        report = run_fuzzingclient(
            service.ws_url("/echo"), workdir / "autobahn", wstest=wstest, timeout=300
        )
        assert_healthy(service)
    assert_conformant(report, CORE_CASE_COUNT)


def run_compressing_echo_route(wstest: Path, workdir: Path) -> None:
    with Service({"ROUTES": [echo_route(compress=True)]}) as service:
        report = run_fuzzingclient(
            service.ws_url("/echo"),
            workdir / "autobahn",
            cases=COMPRESSION_SMOKE_CASES,
            wstest=wstest,
            timeout=300,
        )
        assert_healthy(service)
    # Negotiated for real: an echo that ignored the offer would leave these UNIMPLEMENTED.
    assert_conformant(report, len(COMPRESSION_SMOKE_CASES))
    assert all(r.behavior != "UNIMPLEMENTED" for r in report.results), report.summary()


def _proxy_settings(upstream_url: str) -> dict[str, Any]:
    route = echo_route("/relay", mode="proxy", upstream="echo")
    return {"ROUTES": [route], "UPSTREAMS": {"echo": {"url": upstream_url}}}


def _skip_unless_proxy_configurable(settings: dict[str, Any]) -> None:
    """Proxy mode comes with the outbound pool; until it is registered the test cannot run."""
    from service.modes import MODES

    if "proxy" not in MODES:
        pytest.skip(f"proxy mode is not implemented yet (service.modes.MODES: {sorted(MODES)})")
    check = check_config(settings)
    if check.returncode != 0:
        pytest.skip(f"a proxy route cannot be configured yet: {check.stdout}{check.stderr}")


async def _relays_an_echo(url: str) -> None:
    async with websockets.connect(url, open_timeout=10) as ws:
        await ws.send("probe")
        assert await asyncio.wait_for(ws.recv(), 10) == "probe"


def run_proxy_route(wstest: Path, workdir: Path) -> None:
    with Service({"ROUTES": [echo_route()]}) as upstream:
        settings = _proxy_settings(upstream.ws_url("/echo"))
        _skip_unless_proxy_configurable(settings)
        with Service(settings) as relay:
            try:
                asyncio.run(_relays_an_echo(relay.ws_url("/relay")))
            except InvalidStatus as error:
                raise AssertionError(f"the proxy route refused: {error}\n{relay.stderr}") from None
            report = run_fuzzingclient(
                relay.ws_url("/relay"), workdir / "autobahn", wstest=wstest, timeout=300
            )
            assert_healthy(relay)
            assert_healthy(upstream)
    assert_conformant(report, CORE_CASE_COUNT)


def run_client(wstest: Path, workdir: Path) -> None:
    with fuzzingserver(workdir / "autobahn", wstest=wstest) as server:
        asyncio.run(run_client_cases(server))
        report = server.report()
    assert_conformant(report, CORE_CASE_COUNT)


#: Each test's run: its wstest, the wsrelay processes it needs, and every check on them.
Run = Callable[[Path, Path], None]
RUNS: dict[str, Run] = {
    "test_echo_route_passes_cases_1_to_11": run_echo_route,
    "test_compressing_echo_route_passes_the_first_deflate_cases": run_compressing_echo_route,
    "test_proxy_route_passes_cases_1_to_11_both_ways": run_proxy_route,
    "test_client_passes_cases_1_to_11": run_client,
}


class Runs:
    """The runs of the selected tests, all started at once, one thread each.

    A run spends most of its time waiting (wstest's cases pause on purpose, and each side has its
    own wstest process), so they overlap well even on two cores. Each test waits for its own
    run: its assertion, skip or error is raised there, as if the test had run it itself.
    """

    def __init__(self, pool: ThreadPoolExecutor, wstest: Path, workdirs: Callable[[str], Path]):
        self._pool = pool
        self._wstest = wstest
        self._workdirs = workdirs
        self._futures: dict[Run, Future[None]] = {}

    def start(self, run: Run) -> None:
        if run not in self._futures:
            workdir = self._workdirs(run.__name__)
            self._futures[run] = self._pool.submit(run, self._wstest, workdir)

    def outcome(self, run: Run) -> None:
        """Wait for `run` (started now if it was not) and raise what it raised."""
        self.start(run)
        self._futures[run].result()


@pytest.fixture(scope="module")
def autobahn(
    request: pytest.FixtureRequest, wstest: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    selected = [
        RUNS[item.name]
        for item in request.session.items
        if item.name in RUNS and isinstance(item, pytest.Function) and item.module is request.module
    ]
    with ThreadPoolExecutor(max_workers=len(RUNS), thread_name_prefix="autobahn") as pool:
        runs = Runs(pool, wstest, tmp_path_factory.mktemp)
        for run in selected:
            runs.start(run)
        yield runs


def test_echo_route_passes_cases_1_to_11(autobahn: Runs) -> None:
    autobahn.outcome(run_echo_route)


def test_compressing_echo_route_passes_the_first_deflate_cases(autobahn: Runs) -> None:
    autobahn.outcome(run_compressing_echo_route)


def test_proxy_route_passes_cases_1_to_11_both_ways(autobahn: Runs) -> None:
    autobahn.outcome(run_proxy_route)


def test_client_passes_cases_1_to_11(autobahn: Runs) -> None:
    autobahn.outcome(run_client)
