"""Every recipe of README's "Testing your client" runs as written (tests/recipes/readme.py says
how) against `wsrelay serve` with its default routes, the way a user starts it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backplane.clusterproc import port_below_ephemeral
from tests.recipes.readme import (
    PORTS,
    Block,
    Recipe,
    console_steps,
    matches,
    read_recipes,
    with_ports,
)
from tests.support import Service

pytestmark = pytest.mark.e2e

RECIPES = read_recipes()
#: The situations issue 12 asks the README to show, each a recipe title.
ASKED_FOR = (
    "Reconnect on 1012",
    "Detect a vanished server (1006)",
    "Detect a hung server with pings",
    "Reassembly",
    "Loss and jitter",
    "Backpressure under a firehose",
    "Load-test URLs",
    "A chaos proxy in front of a real upstream",
)
#: Seconds one block may take: recipes are small, but the machine may be busy.
BLOCK_TIMEOUT = 90


@pytest.fixture(scope="module")
def default_service() -> Iterator[Service]:
    """`wsrelay serve` with nothing set but the port: the default routes of SPEC.md."""
    with Service({"LOG_LEVEL": "warning"}) as running:
        yield running


def user_env(home: Path) -> dict[str, str]:
    """A user's shell: this venv's commands first on the PATH, no WSRELAY_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WSRELAY_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HOME"] = str(home)
    env["COLUMNS"] = "100"
    return env


def shell(command: str, env: dict[str, str], cwd: Path) -> str:
    """Runs one console command in bash; its stdout and stderr together, as a terminal shows."""
    done = subprocess.run(
        ["bash", "-c", command],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        timeout=BLOCK_TIMEOUT,
    )
    return done.stdout.decode()


def run_python(block: Block, code: str, env: dict[str, str], cwd: Path) -> str:
    script = cwd / f"recipe_{block.line}.py"
    script.write_text(code)
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=BLOCK_TIMEOUT,
    )
    assert done.returncode == 0, f"README line {block.line}: {done.stderr.decode()}"
    return done.stdout.decode()


#: The page a browser recipe runs on: one of wsrelay's own, as the README says (Chromium keeps
#: pages from elsewhere from reaching localhost).
JS_PAGE = "http://localhost:8080/healthz"


def run_js(block: Block, code: str, page_url: str, chromium: Any) -> str:
    """Runs the snippet on `page_url` as typed into the browser's console; what it logged."""
    assert block.expected is not None, f"README line {block.line}: a js block needs its output"
    wanted = len(block.expected.strip("\n").splitlines())
    context = chromium.new_context()
    try:
        page = context.new_page()
        logged: list[str] = []
        # console.log lines only: Chromium's own errors (a dropped connection, a missing
        # favicon) are not the snippet's.
        page.on("console", lambda m: logged.append(m.text) if m.type == "log" else None)
        page.goto(page_url)
        page.add_script_tag(content=code)  # a script as typed into the console
        deadline = time.monotonic() + 30
        while len(logged) < wanted:
            if time.monotonic() > deadline:
                pytest.fail(f"README line {block.line}: logged only {logged}")
            page.wait_for_timeout(100)
    finally:
        context.close()
    return "".join(f"{x}\n" for x in logged)


#: A server of a recipe's setup lost the race for its port to another process of this busy
#: machine (the port was free when picked): the recipe runs again on other ports.
PORT_TAKEN = "address already in use"


class PortTaken(Exception):
    pass


class Setup:
    """The recipe's `sh` blocks, with the servers they start left running until the end."""

    def __init__(self) -> None:
        self.groups: list[int] = []

    def run(self, block: Block, code: str, env: dict[str, str], cwd: Path) -> None:
        log = cwd / f"setup_{block.line}.log"
        with log.open("wb") as output:  # the servers' logs too: a pipe nobody reads would fill
            process = subprocess.Popen(
                ["bash", "-e", "-c", code],
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.groups.append(process.pid)
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while process.poll() is None:  # the setup waits for its servers: watch them too
            if PORT_TAKEN in log.read_text(errors="replace"):
                raise PortTaken(log.read_text(errors="replace"))
            if time.monotonic() > deadline:
                pytest.fail(f"README line {block.line}: not done in time\n{log.read_text()}")
            time.sleep(0.2)
        exit_code = process.returncode
        assert exit_code == 0, f"README line {block.line}: exit {exit_code}\n{log.read_text()}"

    def stop(self) -> None:
        for group in self.groups:
            try:
                os.killpg(group, signal.SIGTERM)
            except ProcessLookupError:
                continue
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    os.killpg(group, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.1)
            else:
                os.killpg(group, signal.SIGKILL)


def test_the_readme_has_a_recipe_for_each_situation_the_issue_names() -> None:
    titles = [r.title for r in RECIPES]
    missing = [t for t in ASKED_FOR if not any(title.startswith(t) for title in titles)]
    assert not missing, f"README 'Testing your client' lacks: {missing}"
    assert all(r.blocks for r in RECIPES), "a recipe without code"


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.title for r in RECIPES])
def test_recipe_runs_as_written(
    recipe: Recipe, default_service: Service, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if not recipe.starts_servers:
        run_recipe(recipe, {8080: default_service.port}, request, tmp_path)
        return
    for _attempt in range(3):
        try:
            # Below the ephemeral range: no outgoing connection (another job's, or a TCP
            # self-connect of the setup's own waiting loop) takes the port before it is bound.
            ports = {written: port_below_ephemeral() for written in PORTS}
            run_recipe(recipe, ports, request, tmp_path)
            return
        except PortTaken as taken:
            problem = str(taken)
    pytest.fail(f"three times a port was taken before the recipe's server bound it:\n{problem}")


def run_recipe(
    recipe: Recipe, ports: dict[int, int], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    env = user_env(tmp_path)
    setup = Setup()
    try:
        for block in recipe.blocks:
            run_block(block, ports, setup, env, request, tmp_path)
    finally:
        setup.stop()


def run_block(
    block: Block,
    ports: dict[int, int],
    setup: Setup,
    env: dict[str, str],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    code = with_ports(block.text, ports)
    expected = with_ports(block.expected, ports) if block.expected else None
    if block.lang == "sh":
        setup.run(block, code, env, tmp_path)
    elif block.lang == "console":
        for command, out in console_steps(code):
            actual = shell(command, env, tmp_path)
            assert matches(out, actual), (
                f"README line {block.line}: $ {command}\n--- expected\n{out}\n--- got\n{actual}"
            )
    elif block.lang in ("python", "js"):
        if block.lang == "python":
            actual = run_python(block, code, env, tmp_path)
        else:
            page = with_ports(JS_PAGE, ports)
            actual = run_js(block, code, page, request.getfixturevalue("chromium"))
        if expected is not None:
            assert matches(expected, actual), (
                f"README line {block.line}\n--- expected\n{expected}\n--- got\n{actual}"
            )
    else:
        pytest.fail(f"README line {block.line}: no way to run a {block.lang!r} block")
