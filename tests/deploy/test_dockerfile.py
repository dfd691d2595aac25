"""The Dockerfile: hadolint clean, and built the way the deploy issue asks (read as instructions).

The image is really built and run by test_container.py; these checks are the fast, static half.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from .tools import REPO, run, venv_tool

DOCKERFILE = REPO / "Dockerfile"


def instructions(path: Path = DOCKERFILE) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            logical.append(pending)
            pending = ""
    return [(item.split(None, 1)[0].upper(), item.split(None, 1)[1]) for item in logical]


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each stage (what precedes the first FROM goes with the first)."""
    result: list[list[tuple[str, str]]] = [[]]
    for step in instructions():
        if step[0] == "FROM" and any(name == "FROM" for name, _ in result[-1]):
            result.append([])
        result[-1].append(step)
    return result


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    hadolint = venv_tool("hadolint")
    result = run([hadolint, "--no-color", DOCKERFILE])
    assert result.returncode == 0, result.stdout + result.stderr
    # The same hadolint does report a flawed file: the clean result above means something.
    flawed = tmp_path / "Dockerfile"
    flawed.write_text("FROM debian\nRUN cd /tmp && apt-get install curl\n")
    assert run([hadolint, "--no-color", flawed]).returncode != 0


def test_no_syntax_directive_so_the_legacy_builder_reads_it() -> None:
    first = DOCKERFILE.read_text().splitlines()[0]
    assert not re.match(r"#\s*syntax\s*=", first, re.I)


def test_base_image_is_an_argument_with_an_official_slim_python_default() -> None:
    steps = instructions()
    assert steps[0][0] == "ARG"
    assert steps[0][1].startswith("BASE_IMAGE=python:3.11-slim")
    froms = [args for name, args in steps if name == "FROM"]
    assert froms == ["${BASE_IMAGE} AS build", "${BASE_IMAGE}"], "two stages on BASE_IMAGE"


def test_dependencies_are_installed_in_the_build_stage_only() -> None:
    build_stage, final_stage = stages()
    assert any("pip install" in args for name, args in build_stage if name == "RUN")
    assert not any("pip" in args for name, args in final_stage if name == "RUN")
    assert ("COPY", "--from=build /opt/venv /opt/venv") in final_stage
    # The offline switch: pip reads these from the environment of the build stage.
    build_args = {args.split("=")[0] for name, args in build_stage if name == "ARG"}
    assert {"PIP_NO_INDEX", "PIP_FIND_LINKS"} <= build_args


def test_final_image_runs_as_non_root_and_stops_on_sigterm() -> None:
    final = dict(stages()[-1])
    user = final["USER"]
    assert user.split(":")[0] not in ("0", "root")
    assert user.split(":")[0].isdigit()
    assert final["EXPOSE"] == "8080"
    assert json.loads(final["ENTRYPOINT"]) == ["wsrelay"]
    assert json.loads(final["CMD"]) == ["serve"]
    assert final["STOPSIGNAL"] == "SIGTERM"


def test_healthcheck_is_wsrelays_own_probe() -> None:
    """`wsrelay healthcheck` follows the settings (TLS, port, prefix): a fixed URL would not."""
    healthcheck = [args for name, args in instructions() if name == "HEALTHCHECK"]
    assert len(healthcheck) == 1
    command = json.loads(healthcheck[0].split("CMD", 1)[1])
    assert command == ["wsrelay", "healthcheck"]
    assert "--timeout=3s" in healthcheck[0]  # longer than the probe's own 2 s


@pytest.mark.parametrize("needed", ["pyproject.toml", "service/"])
def test_dockerignore_lets_in_only_what_the_build_needs(needed: str) -> None:
    lines = [
        line
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines[0] == "*", "everything is excluded first"
    assert f"!{needed}" in lines
