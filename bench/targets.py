"""The servers under test: how to start each one, and whether it can run on this machine.

wsrelay runs as the product runs (`python -m service serve` with WSRELAY_ settings); the peers
are the small programs in bench/peers/. Every server is pinned to core 0 by the harness.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "bench" / "peers"
NODE_DIR = PEERS / "node"
PY = sys.executable

ECHO_ROUTES: list[dict[str, object]] = [
    {"path": "/echo", "mode": "echo"},
    {"path": "/rooms/{room}", "mode": "broadcast"},
]
# Which environment switches off wsrelay's metrics, if the settings have one: see metrics_switch().
METRICS_OFF_CANDIDATES = (
    {"WSRELAY_METRICS_ENABLED": "false"},
    {"WSRELAY_METRICS": "false"},
)


@dataclass
class Target:
    """A server to measure: `argv(port)` starts it listening on 127.0.0.1:port."""

    name: str
    label: str
    argv: Callable[[int], list[str]]
    env: Callable[[int], dict[str, str]] = field(default=lambda _port: {})
    protocol: str = "ws"  # "tcp" for the raw TCP floor
    keepalive: str = "off"
    missing: str | None = None  # why it cannot run here; None when it can

    def url(self, port: int, path: str = "/echo") -> str:
        return f"ws://127.0.0.1:{port}{path}"


def wsrelay_env(
    port: int, routes: list[dict[str, object]] | None = None, **settings: object
) -> dict[str, str]:
    env = {
        "WSRELAY_HOST": "127.0.0.1",
        "WSRELAY_PORT": str(port),
        "WSRELAY_ROUTES": json.dumps(routes or ECHO_ROUTES),
        "WSRELAY_LOG_LEVEL": "warning",
        "WSRELAY_MAX_CONNECTIONS": "20000",
        "WSRELAY_SHUTDOWN_TIMEOUT": "2",
    }
    env.update({f"WSRELAY_{k.upper()}": _env_value(v) for k, v in settings.items()})
    return env


def _env_value(v: object) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def wsrelay_missing() -> str | None:
    if (
        not (ROOT / "service" / "__main__.py").exists()
        and not (ROOT / "service" / "cli.py").exists()
    ):
        return "not available yet: the service package (issue 2) is not in this tree"
    return None


def check_config(env: dict[str, str]) -> tuple[bool, str]:
    """Ask wsrelay itself whether it accepts these settings (`wsrelay check-config`)."""
    proc = subprocess.run(
        [PY, "-m", "service", "check-config"],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode == 0, (proc.stdout + proc.stderr).strip()


def metrics_switch() -> dict[str, str] | None:
    """The environment that turns wsrelay's metrics off, or None when there is no such setting.

    A candidate counts when check-config accepts it set to false and rejects it set to a
    non-boolean: then the setting exists (an unknown variable could be silently ignored).
    """
    if wsrelay_missing():
        return None
    for candidate in METRICS_OFF_CANDIDATES:
        ok, _ = check_config({**wsrelay_env(1), **candidate})
        bad, _ = check_config({**wsrelay_env(1), **dict.fromkeys(candidate, "not-a-bool")})
        if ok and not bad:
            return candidate
    return None


def wsrelay(
    label: str = "wsrelay",
    routes: list[dict[str, object]] | None = None,
    extra_env: dict[str, str] | None = None,
    **settings: object,
) -> Target:
    """wsrelay as shipped: keepalive on (default 20 s ping), metrics on, settings from env."""

    def argv(_port: int) -> list[str]:
        return [PY, "-m", "service", "serve"]

    def env(port: int) -> dict[str, str]:
        return {**wsrelay_env(port, routes, **settings), **(extra_env or {})}

    return Target("wsrelay", label, argv, env, keepalive="on", missing=wsrelay_missing())


def python_peer(name: str, label: str, script: str, *extra: str, module: str) -> Target:
    missing = None
    if importlib.util.find_spec(module) is None:
        missing = f"python package {module} not installed (pip install -e '.[bench]')"

    def argv(port: int) -> list[str]:
        return [PY, str(PEERS / script), "--port", str(port), *extra]

    return Target(name, label, argv, missing=missing)


def node_peer() -> Target:
    missing = None
    if shutil.which("node") is None:
        missing = "node not on PATH"
    elif not (NODE_DIR / "node_modules" / "ws").exists():
        missing = "bench/peers/node/node_modules missing (make bench runs npm ci there)"

    def argv(port: int) -> list[str]:
        return ["node", str(NODE_DIR / "echo.js"), "--port", str(port)]

    return Target("node-ws", "Node ws 8", argv, missing=missing)


def echo_targets() -> list[Target]:
    """W1/W2: wsrelay first, then the peers of the issue's table."""
    websockets = python_peer(
        "websockets", "websockets 17 + uvloop", "websockets_echo.py", module="websockets"
    )
    websockets.keepalive = "on (20 s default)"
    tcp = python_peer("tcp-floor", "raw TCP echo, uvloop", "tcp_echo.py", module="uvloop")
    tcp.protocol = "tcp"
    return [
        wsrelay(),
        python_peer("aiohttp", "bare aiohttp + uvloop", "aiohttp_echo.py", module="aiohttp"),
        python_peer(
            "aiohttp-asyncio",
            "aiohttp, default asyncio loop",
            "aiohttp_echo.py",
            "--loop",
            "asyncio",
            module="aiohttp",
        ),
        websockets,
        node_peer(),
        python_peer("picows", "picows 2.3", "picows_echo.py", module="picows"),
        tcp,
        python_peer("starlette", "Starlette on uvicorn", "starlette_echo.py", module="starlette"),
    ]


def version_of(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "not installed"


def versions() -> dict[str, str]:
    out = {
        "python": sys.version.split()[0],
        **{
            m: version_of(m)
            for m in (
                "aiohttp",
                "uvloop",
                "websockets",
                "picows",
                "starlette",
                "uvicorn",
                "prometheus-client",
            )
        },
    }
    node = shutil.which("node")
    out["node"] = (
        subprocess.run(
            [node, "--version"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if node
        else "not installed"
    )
    ws_pkg = NODE_DIR / "node_modules" / "ws" / "package.json"
    out["ws (npm)"] = (
        json.loads(ws_pkg.read_text())["version"] if ws_pkg.exists() else "not installed"
    )
    return out
