"""The image, built and run for real in a private Docker daemon (tests/deploy/dockerd.py).

No registry serves images here, so the base is a Debian bookworm + python3 image made with
debootstrap from the machine's own apt mirror (`make base-image`, cached outside the repo), and
the Dockerfile builds with --network none from wheels downloaded on the host (`make wheels`,
`make image OFFLINE_WHEELS=...`: the targets users run). The container runs with host
networking on 127.0.0.1, a read-only root filesystem and the image's non-root user; a client on
the host checks the health check, echo, a broadcast between two replicas sharing a private
redis-server (the compose topology), and that `docker stop` drains with close code 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import trustme
import websockets

from tests.backplane.redisproc import RedisServer, redis_server_binary
from tests.support import Metrics, free_port, http_get

from .dockerd import Dockerd
from .tools import REPO

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

CACHE = Path(os.environ.get("WSRELAY_CI_CACHE", "/var/cache/wsrelay-ci"))
BASE_IMAGE = "wsrelay-base:bookworm-python3"
IMAGE = "wsrelay:ci"
WHEELS = "dist/wheels"
SHUTDOWN_TIMEOUT = 5


def make(target: str, dockerd: Dockerd, timeout: float, **variables: str) -> None:
    """A deploy.mk target against the private daemon; its output shown if it fails."""
    command = ["make", "--no-print-directory", target, f"DOCKER={dockerd.client}"]
    command += [f"{key}={value}" for key, value in variables.items()]
    result = subprocess.run(
        command, cwd=REPO, env=dockerd.env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"make {target}:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="module")
def dockerd() -> Iterator[Dockerd]:
    daemon = Dockerd()
    try:
        daemon.start()
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def image(dockerd: Dockerd) -> str:
    """wsrelay's image, built offline on the debootstrapped base with `make image`."""
    CACHE.mkdir(parents=True, exist_ok=True)
    # One build at a time on this machine: dist/wheels is shared by concurrent runs.
    with (CACHE / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        make("base-image", dockerd, 900, BASE_IMAGE_TAG=BASE_IMAGE)
        # No WHEELS_PYTHON: the venv's Python (a newer 3.11 than bookworm's 3.11.2) chooses
        # wheels for every 3.11 release, async-timeout included (issue 13).
        make("wheels", dockerd, 600, WHEELS_DIR=WHEELS)
        make("image", dockerd, 600, BASE_IMAGE=BASE_IMAGE, OFFLINE_WHEELS=WHEELS, IMAGE=IMAGE)
    return IMAGE


def start_container(
    dockerd: Dockerd, image: str, *, mounts: Sequence[str] = (), **settings: str
) -> dict[str, Any]:
    """The image running with host networking on a free loopback port: its name and port.

    `mounts` are `--volume` arguments (HOST:CONTAINER[:ro]); `settings` are WSRELAY_* values.
    """
    name = f"wsrelay-ci-{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = {"HOST": "127.0.0.1", "PORT": str(port), "SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT)}
    env.update(settings)
    result = dockerd.docker(
        "run", "--detach", "--name", name,
        "--network", "host", "--read-only",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        *(arg for key, value in env.items() for arg in ("--env", f"WSRELAY_{key}={value}")),
        *(arg for mount in mounts for arg in ("--volume", mount)),
        # The image's own health check command, polled faster than its default.
        "--health-interval", "1s", "--health-start-period", "1s",
        image,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return {"name": name, "port": port}


@pytest.fixture(scope="module")
def container(dockerd: Dockerd, image: str) -> Iterator[dict[str, Any]]:
    """One replica with the default settings, shared by the tests below."""
    started = start_container(dockerd, image)
    try:
        yield started
    finally:
        dockerd.docker("rm", "-f", started["name"])


def wait_for_health(dockerd: Dockerd, name: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = dockerd.inspect(name)["State"]
        assert state["Running"], f"container exited: {dockerd.docker('logs', name).stderr}"
        if state["Health"]["Status"] == "healthy":
            return dict(state["Health"])
        time.sleep(0.5)
    raise AssertionError(f"not healthy in {timeout} s: {dockerd.inspect(name)['State']['Health']}")


def test_image_declares_user_port_health_check_and_entrypoint(dockerd: Dockerd, image: str) -> None:
    config = dockerd.inspect(image)["Config"]
    assert config["User"] == "10001:10001"
    assert "8080/tcp" in config["ExposedPorts"]
    assert config["Entrypoint"] == ["wsrelay"]
    assert config["Cmd"] == ["serve"]
    assert config["StopSignal"] == "SIGTERM"
    assert config["Healthcheck"]["Test"] == ["CMD", "wsrelay", "healthcheck"]


def test_runtime_image_holds_wsrelay_but_no_installer(dockerd: Dockerd, image: str) -> None:
    def python(code: str) -> int:
        run = ("run", "--rm", "--network", "none", "--entrypoint", "python3", image, "-c", code)
        return dockerd.docker(*run).returncode

    assert python("import service, aiohttp, redis") == 0
    assert python("import pip") != 0


def test_health_check_goes_healthy(dockerd: Dockerd, container: dict[str, Any]) -> None:
    health = wait_for_health(dockerd, container["name"])
    assert health["Log"][-1]["ExitCode"] == 0
    assert f"http://127.0.0.1:{container['port']}/healthz: 200" in health["Log"][-1]["Output"]


def test_health_check_goes_healthy_when_wsrelay_serves_tls(
    dockerd: Dockerd, image: str, tmp_path: Path
) -> None:
    """With WSRELAY_TLS_* set wsrelay speaks https only: the image's check must follow it."""
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path / "tls"
    folder.mkdir()
    issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    folder.chmod(0o755)  # read by the image's user, uid 10001
    for pem in folder.iterdir():
        pem.chmod(0o644)
    started = start_container(
        dockerd,
        image,
        mounts=[f"{folder}:/etc/wsrelay/tls:ro"],
        TLS_CERT_FILE="/etc/wsrelay/tls/cert.pem",
        TLS_KEY_FILE="/etc/wsrelay/tls/key.pem",
    )
    try:
        health = wait_for_health(dockerd, started["name"])
        assert health["Log"][-1]["ExitCode"] == 0
        assert f"https://127.0.0.1:{started['port']}/healthz: 200" in health["Log"][-1]["Output"]
        # It serves TLS only: the same probe over plain http (what the old check did) fails.
        plain = dockerd.docker(
            "exec", "--env", "WSRELAY_TLS_CERT_FILE=", started["name"], "wsrelay", "healthcheck"
        )
        assert plain.returncode == 1, plain.stdout + plain.stderr
        assert f"http://127.0.0.1:{started['port']}/healthz" in plain.stderr
    finally:
        dockerd.docker("rm", "-f", started["name"])


def test_runs_as_non_root_on_a_read_only_root_filesystem(
    dockerd: Dockerd, container: dict[str, Any]
) -> None:
    details = dockerd.inspect(container["name"])
    assert details["HostConfig"]["ReadonlyRootfs"] is True
    assert details["HostConfig"]["NetworkMode"] == "host"
    status = Path(f"/proc/{details['State']['Pid']}/status").read_text()
    uids = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1:]
    assert set(uids) == {"10001"}, f"the server process runs as {uids}"


async def test_echo_from_the_host(dockerd: Dockerd, container: dict[str, Any]) -> None:
    await asyncio.to_thread(wait_for_health, dockerd, container["name"])
    async with websockets.connect(f"ws://127.0.0.1:{container['port']}/echo") as ws:
        await ws.send("hello from the host")
        assert await asyncio.wait_for(ws.recv(), 10) == "hello from the host"
        await ws.send(b"\x00\xffbinary")
        assert await asyncio.wait_for(ws.recv(), 10) == b"\x00\xffbinary"


async def test_two_replicas_share_a_redis_backplane(dockerd: Dockerd, image: str) -> None:
    """The compose topology: a broadcast on one replica reaches a room member on the other."""
    if redis_server_binary() is None:
        pytest.skip("redis-server is missing: Debian package redis-server (make system-deps)")
    with RedisServer() as redis:
        replicas = [start_container(dockerd, image, BACKPLANE_URL=redis.url) for _ in range(2)]
        try:
            for replica in replicas:
                await asyncio.to_thread(wait_for_health, dockerd, replica["name"])
            first, second = (f"ws://127.0.0.1:{r['port']}/rooms/lobby" for r in replicas)
            async with websockets.connect(first) as alice, websockets.connect(second) as bob:
                # Subscriptions travel through Redis: retry until the other side hears one.
                for attempt in range(50):
                    await alice.send(f"hello {attempt}")
                    with contextlib.suppress(TimeoutError):
                        heard = await asyncio.wait_for(bob.recv(), 0.2)
                        break
                else:
                    raise AssertionError("no broadcast crossed the replicas in 50 tries")
                assert str(heard).startswith("hello ")
            for replica in replicas:
                status, _, body = http_get(f"http://127.0.0.1:{replica['port']}/metrics")
                assert status == 200
                assert Metrics(body.decode()).value("wsrelay_backplane_up") == 1
        finally:
            for replica in replicas:
                dockerd.docker("rm", "-f", replica["name"])


async def test_docker_stop_drains_clients_with_1001_and_exits_0(
    dockerd: Dockerd, container: dict[str, Any]
) -> None:
    name = container["name"]
    await asyncio.to_thread(wait_for_health, dockerd, name)
    async with websockets.connect(f"ws://127.0.0.1:{container['port']}/echo") as ws:
        await ws.send("still here")
        assert await asyncio.wait_for(ws.recv(), 10) == "still here"
        grace = SHUTDOWN_TIMEOUT + 20
        stop = asyncio.create_task(
            asyncio.to_thread(dockerd.docker, "stop", "--time", str(grace), name)
        )
        await asyncio.wait_for(ws.wait_closed(), grace)
        assert ws.close_code == 1001
        assert (await stop).returncode == 0
    state = dockerd.inspect(name)["State"]
    assert state["Running"] is False
    assert state["ExitCode"] == 0, dockerd.docker("logs", name).stderr
    assert state["OOMKilled"] is False
