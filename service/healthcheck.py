"""Probe this host's wsrelay: GET /healthz over http, or https when it serves TLS; exit 0 on 200.

What the image's HEALTHCHECK runs (`wsrelay healthcheck`). It asks what `wsrelay serve` listens
on from the same settings: HOST (a wildcard address means loopback), PORT, PATH_PREFIX, and
https instead of http when TLS_CERT_FILE and TLS_KEY_FILE are set. The certificate is not
verified: the check asks whether this process answers, not who it is (a loopback address is in
no certificate anyway).

It runs every few seconds, so it stays cheap: standard library only when the settings come from
the environment alone (the usual container). With a WSRELAY_CONFIG file or a .env file it loads
the settings the way `serve` does, with pydantic, which costs a few tenths of a second more.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

PREFIX = "WSRELAY_"
#: Addresses that mean "every interface": probed on the loopback of the same family.
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}
EXIT_HEALTHY, EXIT_UNHEALTHY = 0, 1
AGENT = "wsrelay-healthcheck"


class Target(NamedTuple):
    scheme: str  # http or https
    host: str
    port: int
    prefix: str

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}{self.prefix}{path}"


def target(host: str, port: int, prefix: str, tls: bool) -> Target:
    """Where a wsrelay with these settings answers, seen from its own host."""
    return Target("https" if tls else "http", WILDCARDS.get(host, host), port, prefix)


def target_from_environment(environ: Mapping[str, str], cwd: Path) -> Target | None:
    """The target from WSRELAY_* variables alone; None when another source may hold settings.

    Names are matched without regard to case, as pydantic-settings does. A value this cannot
    read (a PORT that is not a number) also gives None: the full settings then say what is wrong.
    """
    env = {key.upper(): value for key, value in environ.items() if key.upper().startswith(PREFIX)}
    if PREFIX + "CONFIG" in env or (cwd / ".env").is_file():
        return None
    try:
        port = int(env.get(PREFIX + "PORT", "8080"))
    except ValueError:
        return None
    return target(
        env.get(PREFIX + "HOST", "0.0.0.0"),
        port,
        env.get(PREFIX + "PATH_PREFIX", ""),
        bool(env.get(PREFIX + "TLS_CERT_FILE") and env.get(PREFIX + "TLS_KEY_FILE")),
    )


def target_from_settings() -> Target:
    """The target from every settings source, as `serve` loads them (pydantic: slower)."""
    from .settings import SettingsProblem, load_settings

    try:
        settings = load_settings()
    except SettingsProblem as problem:
        raise SystemExit("\n".join(f"wsrelay: {line}" for line in problem.lines)) from None
    tls = bool(settings.tls_cert_file and settings.tls_key_file)
    return target(settings.host, settings.port, settings.path_prefix, tls)


def probe(where: Target, path: str, timeout: float) -> tuple[bool, str]:
    """GET `path` once: (status was 200, a line saying what happened)."""
    connection: http.client.HTTPConnection
    if where.scheme == "https":
        import ssl

        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(
            where.host, where.port, timeout=timeout, context=context
        )
    else:
        connection = http.client.HTTPConnection(where.host, where.port, timeout=timeout)
    url = where.url(path)
    try:
        connection.request("GET", where.prefix + path, headers={"User-Agent": AGENT})
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as error:
        return False, f"{url}: {error or type(error).__name__}"
    finally:
        connection.close()
    return status == 200, f"{url}: {status}"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ready", action="store_true", help="probe /readyz (accepting connections) instead"
    )
    parser.add_argument(
        "--timeout", type=float, default=2.0, help="seconds to wait for the answer (default 2)"
    )


def main(args: argparse.Namespace) -> int:
    where = target_from_environment(os.environ, Path.cwd()) or target_from_settings()
    if where.port == 0:
        print("wsrelay: PORT is 0 (any free port): nothing fixed to probe", file=sys.stderr)
        return EXIT_UNHEALTHY
    healthy, line = probe(where, "/readyz" if args.ready else "/healthz", args.timeout)
    print(line, file=sys.stdout if healthy else sys.stderr)
    return EXIT_HEALTHY if healthy else EXIT_UNHEALTHY
