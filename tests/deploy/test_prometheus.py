"""Prometheus files and the dashboard's queries, checked by promtool (Debian's prometheus package).

promtool parses every expression with Prometheus's own parser; `promtool test rules` runs the
alert rules over made-up series (alerts.test.yml) to prove each alert fires when it should.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from .tools import (
    ALERT_RULES,
    DASHBOARD,
    PROMETHEUS_CONFIG,
    REPO,
    alert_expressions,
    check,
    dashboard_targets,
    family_of,
    metric_names,
    run,
    spec_metric_families,
    system_tool,
)

ALERTS_TEST = Path(__file__).with_name("alerts.test.yml")
#: The alerts the deploy issue asks for, by the rule names the README documents.
REQUIRED_ALERTS = {
    "WsrelayPingRttHigh",
    "WsrelayAbnormalClosesRising",
    "WsrelayBackplaneDown",
    "WsrelaySlowConsumerDrops",
    "WsrelayConnectionsNearCap",
}


def promtool() -> Path:
    return system_tool("promtool", "prometheus")


def test_prometheus_config_is_valid_and_loads_the_alert_rules() -> None:
    output = check([promtool(), "check", "config", PROMETHEUS_CONFIG])
    assert "1 rule files found" in output
    assert str(ALERT_RULES.relative_to(PROMETHEUS_CONFIG.parent)) in output


def test_alert_rules_are_valid() -> None:
    output = check([promtool(), "check", "rules", ALERT_RULES])
    assert f"{len(REQUIRED_ALERTS)} rules found" in output
    assert {name for name, _ in alert_expressions()} == REQUIRED_ALERTS


def test_each_alert_fires_on_its_situation_and_not_on_a_healthy_one() -> None:
    output = check([promtool(), "test", "rules", ALERTS_TEST], cwd=ALERTS_TEST.parent)
    assert "SUCCESS" in output
    tested = {
        case["alertname"]
        for test in yaml.safe_load(ALERTS_TEST.read_text())["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested == REQUIRED_ALERTS


def test_rule_unit_tests_fail_when_an_alert_is_broken(tmp_path: Path) -> None:
    """The unit tests bite: with the backplane alert's threshold inverted they must fail."""
    broken_rules = tmp_path / "config" / "prometheus" / "alerts" / ALERT_RULES.name
    broken_rules.parent.mkdir(parents=True)
    broken_rules.write_text(
        ALERT_RULES.read_text().replace("wsrelay_backplane_up == 0", "wsrelay_backplane_up == 1")
    )
    tests_dir = tmp_path / "tests" / "deploy"
    tests_dir.mkdir(parents=True)
    (tests_dir / ALERTS_TEST.name).write_text(ALERTS_TEST.read_text())
    result = run([promtool(), "test", "rules", ALERTS_TEST.name], cwd=tests_dir)
    assert result.returncode != 0
    assert "WsrelayBackplaneDown" in result.stdout + result.stderr


def _grafana_to_promql(expr: str) -> str:
    """Grafana's variables replaced by what Prometheus would receive."""
    expr = expr.replace("$__rate_interval", "1m")
    return re.sub(r"\$\{?[a-z_]+\}?", ".*", expr)


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    rules = [
        {"record": f"wsrelay:dashboard_query_{index}", "expr": _grafana_to_promql(expr)}
        for index, (_, expr) in enumerate(dashboard_targets())
        if not expr.startswith("label_values(")
    ]
    rule_file = tmp_path / "dashboard-queries.rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = check([promtool(), "check", "rules", rule_file])
    assert f"{len(rules)} rules found" in output


def test_dashboard_and_alerts_use_only_spec_metric_names() -> None:
    spec = spec_metric_families()
    used = metric_names(dashboard_targets()) | metric_names(alert_expressions())
    unknown = {name for name in used if family_of(name) not in spec}
    assert not unknown, f"not in SPEC.md's metrics table: {sorted(unknown)}"
    # Histogram series by their _bucket/_sum/_count names; other families by their own name.
    for name in used:
        family = family_of(name)
        assert (spec[family] == "histogram") == (name != family), name


def test_dashboard_shows_every_spec_metric() -> None:
    used = {family_of(name) for name in metric_names(dashboard_targets())}
    missing = set(spec_metric_families()) - used
    assert not missing, f"the dashboard shows nothing of {sorted(missing)}"


def test_one_dashboard_file_with_a_datasource_variable() -> None:
    dashboards = list((REPO / "config" / "grafana").rglob("*.json"))
    assert dashboards == [DASHBOARD]
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "wsrelay"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    # Every query goes to the chosen data source, so the JSON works in any Grafana.
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
    titles = [panel["title"] for panel in dashboard["panels"]]
    assert len(titles) == len(set(titles)), "panel titles are unique"
