"""The testing target's fault parameters as options of `wsrelay connect` and `wsrelay bench`.

One option per parameter of SPEC.md's table (`--delay 50ms --drop 0.1 --seed 7`), added to the
URL's query string (`?delay=50ms&drop=0.1&seed=7`) where a route with `query_overrides` reads
them. The values are checked here with the server's own parser and bounds, so a typo is one
line and exit 2 before any socket opens, not a refused handshake.
"""

from __future__ import annotations

import argparse
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from service.faults.params import FAULT_PARAMS, NO_FAULTS, FaultError, faults_from_query

#: Parameters that are flags: `--no-pong` sends `no_pong=true`.
_FLAGS = frozenset({"no_pong"})
_HELP = {
    "delay": "wait before each message the server sends (e.g. 50ms, 2s)",
    "jitter": "+- up to this much more delay per message; order is kept",
    "drop": "probability 0-1 that a message the server would send is not sent",
    "close_after": "close after N messages from this client",
    "close_in": "close after this long",
    "close_code": "the code of that close (default 1000)",
    "close_reason": "the reason of that close",
    "abort_after": "drop the TCP connection, no close frame, after N messages",
    "abort_in": "drop the TCP connection, no close frame, after this long",
    "no_pong": "the server never answers this client's pings",
    "hang_in": "after this long the server stops reading and writing, TCP stays open",
    "fragment": "send every message in frames of at most N payload bytes",
    "throttle": "send at most N bytes per second to this client",
    "reject": "refuse the handshake with this HTTP status",
    "reject_rate": "refuse only this share (0-1) of handshakes",
    "handshake_delay": "wait this long before answering the handshake",
    "seed": "seed for the random choices: the same seed, the same drops and delays",
}


def option_name(param: str) -> str:
    """`close_after` -> `--close-after`."""
    return "--" + param.replace("_", "-")


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per fault parameter, in a group of its own in --help."""
    group = parser.add_argument_group(
        "faults (added to the URL's query string; the route needs query_overrides)"
    )
    for param in FAULT_PARAMS:
        if param in _FLAGS:
            group.add_argument(
                option_name(param), dest=f"fault_{param}", action="store_true", help=_HELP[param]
            )
        else:
            group.add_argument(
                option_name(param), dest=f"fault_{param}", metavar="VALUE", help=_HELP[param]
            )


def fault_query(args: argparse.Namespace) -> dict[str, str]:
    """The fault options given, as query parameters; ValueError naming the option when bad."""
    query: dict[str, str] = {}
    for param in FAULT_PARAMS:
        value = getattr(args, f"fault_{param}", None)
        if value is None or value is False:
            continue
        query[param] = "true" if value is True else str(value)
    try:
        faults_from_query(query, NO_FAULTS)
    except FaultError as error:
        raise ValueError(f"{option_name(error.param)} {str(error).partition(': ')[2]}") from None
    return query


def with_query(url: str, params: dict[str, str]) -> str:
    """`url` with `params` set in its query string: they replace same-named ones, others stay."""
    if not params:
        return url
    parts = urlsplit(url)
    kept = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query = urlencode([*kept, *params.items()], quote_via=quote, safe="")
    return urlunsplit(parts._replace(query=query))
