"""The embedded default serves the routes for testing clients, and the README's examples run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.support import ROOT, Service

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def service() -> Any:
    with Service() as running:  # no ROUTES: the embedded default
        yield running


def test_it_prints_the_urls_of_the_testing_routes(service: Service) -> None:
    base = f"127.0.0.1:{service.port}"
    for line in (
        f"ws://{base}/faults  (echo)",
        f"ws://{base}/stream  (stream)",
        f"http://{base}/http  (http_echo)",
    ):
        assert line in service.stdout


async def test_faults_takes_the_query_stream_pushes_http_echoes(service: Service) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(service.ws_url("/faults?reject=503"))
    assert refused.value.response.status_code == 503
    async with websockets.connect(service.ws_url("/faults?delay=1ms")) as ws:
        await ws.send("hi")
        assert await ws.recv() == "hi"
    async with websockets.connect(service.ws_url("/stream?rate=50&count=2")) as ws:
        assert [json.loads(m)["seq"] async for m in ws] == [0, 1]
    assert ws.close_code == 1000


def readme_blocks(section: str) -> list[str]:
    """The ```sh blocks of a README section (### heading), in order."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"### {section}")
    end = text.find("\n#", start + 4)
    return re.findall(r"```sh\n(.*?)```", text[start:end], re.S)


def run_as_written(command: str, service: Service) -> subprocess.CompletedProcess[str]:
    """Run a README command against `service` instead of localhost:8080."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    stdin, held_open = os.pipe()  # stdin stays open, never written: the server ends a session
    try:
        return subprocess.run(
            ["sh", "-c", command.replace("localhost:8080", f"127.0.0.1:{service.port}")],
            env=env,
            stdin=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(stdin)
        os.close(held_open)


def test_the_readme_examples_of_stream_and_http_echo_run_as_written(service: Service) -> None:
    stream, http = readme_blocks("Modes for testing clients")
    result = run_as_written(stream, service)
    assert result.returncode == 0, result.stderr
    received = [line for line in result.stdout.splitlines() if line.startswith("<")]
    assert [json.loads(line.split(" ", 1)[1])["seq"] for line in received] == [0, 1, 2]
    result = run_as_written(http, service)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["method"], doc["query"], doc["headers"]["X-Trace"]) == (
        "GET",
        {"status": "503", "delay": "200ms"},
        "1",
    )
