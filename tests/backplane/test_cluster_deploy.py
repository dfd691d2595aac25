"""The compose stack takes a Redis Cluster URL from the environment, and wsrelay accepts it.

(The Helm chart's cluster example, helm/wsrelay/ci/redis-cluster-values.yaml, is linted,
rendered and passed through `wsrelay check-config` with every other scenario by
tests/deploy/test_helm.py.)
"""

from __future__ import annotations

import json
import os
import sys

from tests.deploy.tools import REPO, check, compose_binary

URL = "redis-cluster://redis-0:6379,redis-1:6379,redis-2:6379"


def test_compose_replicas_take_the_cluster_url_from_the_environment() -> None:
    env = {**os.environ, "WSRELAY_BACKPLANE_URL": URL}
    output = check(
        [compose_binary(), "-f", REPO / "docker-compose.yml", "config", "--format", "json"],
        env=env,
    )
    services = json.loads(output)["services"]
    for name in ("wsrelay-1", "wsrelay-2"):
        environment = services[name]["environment"]
        assert environment["WSRELAY_BACKPLANE_URL"] == URL
    replica = {"PATH": "/usr/bin:/bin", **services["wsrelay-1"]["environment"]}
    shown = check([sys.executable, "-m", "service", "check-config"], env=replica, cwd="/")
    assert URL in shown
