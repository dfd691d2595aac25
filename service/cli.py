"""The `wsrelay` command (also `python -m service`): serve, check-config, connect, bench."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from urllib.parse import urlsplit

from . import __version__
from .backplane.redis_url import redact
from .settings import Settings, SettingsProblem, load_settings

#: Subcommands in their own modules: each has `configure(parser)` and `main(args) -> int`.
SUBCOMMANDS: dict[str, str] = {
    "connect": "service.tools.connect",
    "bench": "service.tools.bench",
}

EXIT_BAD_SETTINGS = 2


def _load(exit_code: int) -> Settings:
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

    logs.configure(
        settings.log_level,
        settings.log_format,
        secrets=[
            *(token.get_secret_value() for token in settings.auth_tokens),
            urlsplit(settings.backplane_url).password or "",
        ],
    )
    note = _drain_note(settings)
    if note:
        logging.getLogger("wsrelay.drain").warning(note, extra={"event": "settings"})
    server.run(settings)
    return 0


def check_config(args: argparse.Namespace) -> int:
    settings = _load(1)
    print(f"settings OK; routes under {settings.path_prefix or '/'}:")
    for route in settings.routes:
        extras = route.model_dump(exclude_defaults=True, exclude={"path", "mode"})
        shown = " ".join(f"{key}={value}" for key, value in extras.items())
        print(f"  {settings.path_prefix}{route.path}  {route.mode}  {shown}".rstrip())
    for name, upstream in settings.upstreams.items():
        print(f"  upstream {name}: {upstream.url}")
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


def parser() -> argparse.ArgumentParser:
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
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=(module.__doc__ or "").strip().splitlines()[0])
        module.configure(sub)
        sub.set_defaults(run=module.main)
    return top


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    run = getattr(args, "run", serve)
    sys.exit(run(args))


if __name__ == "__main__":  # pragma: no cover
    main()
