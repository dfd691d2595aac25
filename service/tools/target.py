"""Command-line options shared by the client tools: the target URL and how to reach it."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from service.tools.faultargs import add_fault_arguments, fault_query, with_query

_SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


@dataclass(frozen=True)
class Target:
    """Where to connect and with which handshake headers and subprotocols."""

    url: str
    headers: tuple[tuple[str, str], ...] = ()
    subprotocols: tuple[str, ...] = ()


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds URL, --header, --token, --subprotocol and the fault options to a subcommand."""
    parser.add_argument("url", help="ws:// or wss:// URL (http:// and https:// are mapped)")
    parser.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra handshake header; repeatable",
    )
    parser.add_argument(
        "--token", help="bearer token, sent as 'Authorization: Bearer TOKEN' on the handshake"
    )
    parser.add_argument(
        "-s",
        "--subprotocol",
        action="append",
        default=[],
        metavar="NAME",
        help="subprotocol to offer; repeatable",
    )
    add_fault_arguments(parser)


def normalize_url(url: str) -> str:
    """Returns a ws:// or wss:// URL; raises ValueError naming what is wrong."""
    parts = urlsplit(url)
    scheme = _SCHEMES.get(parts.scheme.lower())
    if scheme is None:
        raise ValueError(f"URL {url!r}: expected ws://, wss://, http:// or https://")
    if not parts.hostname:
        raise ValueError(f"URL {url!r}: no host")
    return urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, parts.fragment))


def parse_header(text: str) -> tuple[str, str]:
    """'Name: value' -> ('Name', 'value'); raises ValueError on a line without a name."""
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise ValueError(f"header {text!r}: expected 'NAME: VALUE'")
    return name.strip(), value.strip()


def target_from_args(args: argparse.Namespace) -> Target:
    """Builds the Target from parsed options; raises ValueError on a bad URL, header or fault."""
    headers = [parse_header(h) for h in args.header]
    if args.token:
        headers.append(("Authorization", f"Bearer {args.token}"))
    url = with_query(normalize_url(args.url), fault_query(args))
    return Target(url, tuple(headers), tuple(args.subprotocol))
