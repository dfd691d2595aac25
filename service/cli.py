"""The `wsrelay` command (also `python -m service`): serve, check-config, healthcheck, connect,
bench.

Only what the chosen subcommand needs is imported: `wsrelay healthcheck` runs every few seconds
in the image and must not pay for pydantic, aiohttp or rich.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from . import __version__

if TYPE_CHECKING:
    from .settings import Settings

#: Subcommands in their own modules: each has `configure(parser)` and `main(args) -> int`. A
#: module is imported only when its subcommand is run; the help line is its docstring's first.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "healthcheck": (
        "service.healthcheck",
        "Probe this host's wsrelay: GET /healthz over http, or https when it serves TLS; "
        "exit 0 on 200.",
    ),
    "connect": (
        "service.tools.connect",
        "Interactive WebSocket client, like wscat: stdin lines go out, arrivals are printed.",
    ),
    "bench": (
        "service.tools.bench",
        "Load generator for echo-style targets: open loop, live progress, a latency table.",
    ),
}

EXIT_BAD_SETTINGS = 2


def _load(exit_code: int) -> Settings:
    from .settings import SettingsProblem, load_settings

    try:
        return load_settings()
    except SettingsProblem as problem:
        for line in problem.lines:
            print(f"wsrelay: {line}", file=sys.stderr)
        raise SystemExit(exit_code) from None


def _drain_note(settings: Settings) -> str | None:
    """Says so when SHUTDOWN_DELAY + SHUTDOWN_SPREAD do not fit in SHUTDOWN_TIMEOUT."""
    from .drain import close_window

    delay, spread = settings.shutdown_delay, settings.shutdown_spread
    window = close_window(delay, spread, settings.shutdown_timeout)
    if window >= spread:
        return None
    return (
        f"SHUTDOWN_DELAY ({delay:g}) + SHUTDOWN_SPREAD ({spread:g}) do not fit in "
        f"SHUTDOWN_TIMEOUT ({settings.shutdown_timeout:g}): closes will be spread over "
        f"{window:g} s so that the drain still ends in time"
    )


def serve(args: argparse.Namespace) -> int:
    settings = _load(EXIT_BAD_SETTINGS)
    import logging

    from . import logs, server
    from .urlsecrets import passwords

    logs.configure(
        settings.log_level,
        settings.log_format,
        secrets=[
            *(token.get_secret_value() for token in settings.auth_tokens),
            *passwords(settings.backplane_url),
            *(word for up in settings.upstreams.values() for word in passwords(up.url)),
        ],
    )
    note = _drain_note(settings)
    if note:
        logging.getLogger("wsrelay.drain").warning(note, extra={"event": "settings"})
    try:
        server.run(settings)
    except server.ListenError as error:
        print(f"wsrelay: {error}", file=sys.stderr)
        return 1
    return 0


def check_config(args: argparse.Namespace) -> int:
    settings = _load(1)
    from .urlsecrets import redact

    print(f"settings OK; routes under {settings.path_prefix or '/'}:")
    for route in settings.routes:
        extras = route.model_dump(exclude_defaults=True, exclude={"path", "mode"})
        shown = " ".join(f"{key}={value}" for key, value in extras.items())
        print(f"  {settings.path_prefix}{route.path}  {route.mode}  {shown}".rstrip())
    for name, upstream in settings.upstreams.items():
        print(f"  upstream {name}: {redact(upstream.url)}")
    print(f"  backplane: {redact(settings.backplane_url)}")
    metrics = f"{settings.path_prefix}/metrics" if settings.metrics_enabled else "off"
    print(f"  metrics: {metrics}")
    print(
        f"  drain: first close {settings.shutdown_delay:g} s after the signal, "
        f"exit within {settings.shutdown_timeout:g} s"
    )
    note = _drain_note(settings)
    if note:
        print(f"  note: {note}")
    return 0


def parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only `command`'s module is imported and configured (None: all)."""
    top = argparse.ArgumentParser(
        prog="wsrelay",
        description="WebSocket echo/relay service. Settings come from WSRELAY_* variables.",
    )
    top.add_argument("--version", action="version", version=f"wsrelay {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("serve", help="serve the configured routes (the default)").set_defaults(
        run=serve
    )
    commands.add_parser(
        "check-config", help="validate the settings and print the effective routes"
    ).set_defaults(run=check_config)
    for name, (module_name, summary) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=summary)
        if command is None or command == name:
            module = importlib.import_module(module_name)
            module.configure(sub)
            sub.set_defaults(run=module.main)
    return top


def _command(argv: Sequence[str]) -> str:
    """The subcommand named in `argv` (the top level's own options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), "")


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser(_command(argv)).parse_args(argv)
    run = getattr(args, "run", serve)
    sys.exit(run(args))


if __name__ == "__main__":  # pragma: no cover
    main()
