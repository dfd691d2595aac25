"""A private Redis Cluster on loopback: 6 `redis-server` processes, 3 masters and 3 replicas.

Made with `redis-cli --cluster create`, as an operator would. Each node gets an explicit
cluster bus port (`--cluster-port`: Redis refuses port + 10000 above 55535); client and bus
ports are taken below the kernel's ephemeral range (see `port_below_ephemeral`). Node files
live in a private directory, so a node (or the whole cluster) killed and started again on the
same ports comes back with its identity and slots. Used by tests/backplane/test_cluster*.py and
bench/backplane.
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.backplane.redisproc import RedisServer, TLSFiles
from tests.support import free_port

REDIS_CLI = "redis-cli"
#: Short, so that a killed master's replica takes over within a few seconds.
NODE_TIMEOUT_MS = 1000


def redis_cli_binary() -> str | None:
    return shutil.which(REDIS_CLI)


def port_below_ephemeral() -> int:
    """A free loopback port below the kernel's ephemeral range.

    A cluster's ports are chosen before its nodes listen (replicas may be started first), and
    no outgoing connection takes a port from below that range meanwhile: not another job's,
    nor a replica's retry connecting to the very port it came from (a TCP self-connect).
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(10_000, low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


class ClusterNode(RedisServer):
    """One `redis-server --cluster-enabled yes` with its own bus port and node file."""

    def __init__(
        self, directory: Path, tls: TLSFiles | None = None, password: str | None = None
    ) -> None:
        super().__init__(port_below_ephemeral(), tls=tls, password=password)
        self.bus_port = port_below_ephemeral()
        self.nodes_file = directory / f"nodes-{self.port}.conf"

    def _listen_args(self) -> list[str]:
        return [
            *super()._listen_args(),
            *("--cluster-enabled", "yes", "--cluster-port", str(self.bus_port)),
            *("--cluster-config-file", str(self.nodes_file)),
            *("--cluster-node-timeout", str(NODE_TIMEOUT_MS)),
            # A replica may take over however long it was cut off: the tests kill masters.
            *("--cluster-replica-validity-factor", "0"),
            *(() if self.password is None else ("--masterauth", self.password)),
            *(() if self.tls is None else ("--tls-cluster", "yes", "--tls-replication", "yes")),
        ]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, *command: str) -> Any:
        """One command on this node, decoded (the tests' independent view)."""
        import redis

        with redis.Redis.from_url(self.url, socket_timeout=5, decode_responses=True) as client:
            return client.execute_command(*command)


class Cluster:
    """Six nodes; `masters()` and `node_for_slot()` read the live topology from the nodes."""

    def __init__(
        self,
        masters: int = 3,
        replicas_per_master: int = 1,
        tls: TLSFiles | None = None,
        password: str | None = None,
    ) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="wsrelay-cluster-"))
        self.replicas_per_master = replicas_per_master
        self.tls = tls
        self.password = password
        self.nodes = [
            ClusterNode(self.directory, tls, password)
            for _ in range(masters * (1 + replicas_per_master))
        ]

    @property
    def url(self) -> str:
        """BACKPLANE_URL naming every node as a startup node."""
        auth = "" if self.password is None else f":{self.password}@"
        nodes = ",".join(node.address for node in self.nodes)
        if self.tls is None:
            return f"redis-cluster://{auth}{nodes}"
        return f"rediss-cluster://{auth}{nodes}?ssl_ca_certs={self.tls.ca}"

    def _cli(self) -> list[str]:
        """redis-cli and the options that reach these nodes."""
        cli = redis_cli_binary()
        if cli is None:
            raise FileNotFoundError(f"{REDIS_CLI} not on PATH (Debian package redis-tools)")
        options = [] if self.password is None else ["--no-auth-warning", "-a", self.password]
        if self.tls is not None:
            options += ["--tls", "--cacert", str(self.tls.ca)]
        return [cli, *options]

    def start(self) -> Cluster:
        for node in self.nodes:
            node.start()
        subprocess.run(
            [
                *self._cli(),
                *("--cluster", "create", *(node.address for node in self.nodes)),
                *("--cluster-replicas", str(self.replicas_per_master), "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Cluster:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- topology, as the live nodes see it -----------------------------------------------------
    def alive(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.process is not None]

    def _nodes_lines(self) -> list[list[str]]:
        return [line.split() for line in self.alive()[0].call("CLUSTER", "NODES").splitlines()]

    def masters(self) -> dict[str, list[tuple[int, int]]]:
        """Address -> slot ranges of every master that serves slots, per CLUSTER NODES."""
        masters = {}
        for fields in self._nodes_lines():
            if "master" in fields[2] and "fail" not in fields[2] and len(fields) > 8:
                ranges = []
                for part in fields[8:]:
                    if part.startswith("["):
                        continue  # a slot being migrated or imported
                    low, _, high = part.partition("-")
                    ranges.append((int(low), int(high or low)))
                masters[fields[1].split("@")[0]] = ranges
        return masters

    def node_ids(self) -> dict[str, str]:
        """Address -> node id."""
        return {fields[1].split("@")[0]: fields[0] for fields in self._nodes_lines()}

    def node_for_slot(self, slot: int) -> ClusterNode:
        for address, ranges in self.masters().items():
            if any(low <= slot <= high for low, high in ranges):
                return self.node(address)
        raise LookupError(f"no master serves slot {slot}")

    def node(self, address: str) -> ClusterNode:
        return next(node for node in self.nodes if node.address == address)

    def shard_channels(self, node: ClusterNode) -> set[str]:
        """The sharded channels with subscribers on `node` (PUBSUB SHARDCHANNELS)."""
        return set(node.call("PUBSUB", "SHARDCHANNELS"))

    # -- faults --------------------------------------------------------------------------------
    def wait_ok(self, timeout: float = 30.0) -> None:
        """Every live node says cluster_state:ok and they agree on the masters."""

        def settled() -> bool:
            alive = self.alive()
            states = [node.call("CLUSTER", "INFO") for node in alive]
            if not all("cluster_state:ok" in state for state in states):
                return False
            views = [
                sorted(
                    line.split()[1]
                    for line in node.call("CLUSTER", "NODES").splitlines()
                    if " master" in line or ",master" in line
                    if "fail" not in line.split()[2] and len(line.split()) > 8
                )
                for node in alive
            ]
            return all(view == views[0] for view in views)

        _wait(settled, "cluster_state:ok on every live node", timeout)

    def kill_master_of(self, slot: int) -> ClusterNode:
        """SIGKILL the master serving `slot` and wait until its replica has taken over."""
        victim = self.node_for_slot(slot)
        victim.kill()
        self.wait_promoted(victim)
        return victim

    def wait_promoted(self, victim: ClusterNode) -> None:
        """Wait until no slot is served by the killed `victim` any more."""
        _wait(lambda: victim.address not in self.masters(), "a replica taking over", 30.0)
        self.wait_ok()

    def restart(self, node: ClusterNode) -> None:
        """Start a killed node on its port again; it rejoins with its node file."""
        node.start()
        self.wait_ok()

    def reshard(self, slots: int, source: str, target: str) -> None:
        """Move `slots` slots (the source's lowest first) with `redis-cli --cluster reshard`."""
        ids = self.node_ids()
        subprocess.run(
            [
                *self._cli(),
                *("--cluster", "reshard", source),
                *("--cluster-from", ids[source], "--cluster-to", ids[target]),
                *("--cluster-slots", str(slots), "--cluster-yes"),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()


def lowest_slot(ranges: list[tuple[int, int]]) -> int:
    return min(low for low, _ in ranges)


def _wait(check: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass  # a node still starting
        except Exception as error:  # redis-py's ConnectionError and friends
            if not re.search(r"connect|Connection|LOADING|closed", str(error)):
                raise
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
