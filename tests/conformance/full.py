"""`make conformance-full`: every Autobahn case, compression included, and a results table.

Runs cases 1-13 (12.* and 13.* are permessage-deflate: nearly all of the time, about 20
minutes a side here) against an echo route with `compress` on; with ``--sides client``,
against wsrelay's own compressing client; with ``--sides proxy``, through proxy routes to a
wsrelay echo upstream: cases 1-11 on a plain route (the relayed, undecoded path) and 12-13 on
a compressing one (the decoded path). Writes a Markdown table to ``--markdown``. Exits 1 if
any case FAILED.

    python -m tests.conformance.full --markdown docs/conformance.md [--sides echo client proxy]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from tests.conformance.autobahn import (
    COMPRESSION_CASES,
    CORE_CASES,
    Report,
    echo_route,
    fuzzingserver,
    run_fuzzingclient,
)
from tests.conformance.client import run_client_cases
from tests.support import Service

ALL_CASES = CORE_CASES + COMPRESSION_CASES
BEHAVIORS = ["OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"]


@dataclass
class SideResult:
    side: str
    report: Report
    seconds: float


def run_echo(workdir: Path) -> Report:
    route = echo_route(compress=True)
    with Service({"ROUTES": [route]}) as service:
        return run_fuzzingclient(
            service.ws_url("/echo"), workdir / "echo", cases=ALL_CASES, timeout=3600
        )


def run_proxy(workdir: Path) -> Report:
    with Service({"ROUTES": [echo_route(compress=True)]}) as upstream:
        routes = [
            echo_route("/relay", mode="proxy", upstream="echo"),
            echo_route("/relay-deflate", mode="proxy", upstream="echo", compress=True),
        ]
        settings = {"ROUTES": routes, "UPSTREAMS": {"echo": {"url": upstream.ws_url("/echo")}}}
        with Service(settings) as relay:
            plain = run_fuzzingclient(
                relay.ws_url("/relay"), workdir / "proxy", cases=CORE_CASES, timeout=3600
            )
            deflate = run_fuzzingclient(
                relay.ws_url("/relay-deflate"),
                workdir / "proxy-deflate",
                cases=COMPRESSION_CASES,
                timeout=3600,
            )
    return Report(plain.agent, plain.results + deflate.results, plain.outdir.parent)


def run_client(workdir: Path) -> Report:
    with fuzzingserver(workdir / "client", cases=ALL_CASES) as server:
        asyncio.run(run_client_cases(server, compress=True, case_timeout=600))
        return server.report()


def markdown(results: list[SideResult]) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Autobahn|Testsuite results",
        "",
        f"`make conformance-full` on {now}: autobahntestsuite 25.10.1, wsrelay "
        f"{version('wsrelay')}, aiohttp {version('aiohttp')}, Python {platform.python_version()}.",
        "Cases 1-13 (12.* and 13.* are permessage-deflate). The gate is FAILED = 0; OK, NON-STRICT",
        "and INFORMATIONAL are all passes (wstest moves cases between them from run to run).",
        "The proxy side relays to a wsrelay echo upstream: 1-11 on a plain proxy route (frames",
        "relayed undecoded), 12-13 on a compressing one. `make test` runs cases 1-11 on the echo",
        "route, the proxy route and the client, and 12.1.1-6 and 13.1.1-6 on a compressing echo",
        "route. Minutes are wall time on a 2-core machine shared with other work: wstest (pure",
        "Python 2) is the slow side.",
        "",
        "| side | cases | " + " | ".join(BEHAVIORS) + " | minutes |",
        "|---|---:|" + "---:|" * len(BEHAVIORS) + "---:|",
    ]
    for result in results:
        counts = result.report.counts()
        cells = " | ".join(str(counts.get(b, 0)) for b in BEHAVIORS)
        lines.append(
            f"| {result.side} | {len(result.report.results)} | {cells} | "
            f"{result.seconds / 60:.1f} |"
        )
    failed = [(r.side, c) for r in results for c in r.report.failed]
    lines.append("")
    if failed:
        lines.append("Failed cases:")
        lines += [f"- {side}: {case.describe()}" for side, case in failed]
    else:
        lines.append("No case FAILED.")
    non_strict = [(r.side, c) for r in results for c in r.report.results if c.behavior != "OK"]
    if non_strict:
        lines += ["", "Cases not plain OK (allowed):", ""]
        lines += [f"- {side}: {case.describe()}" for side, case in non_strict]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", type=Path, help="write the results table here")
    parser.add_argument("--sides", nargs="+", choices=["echo", "client", "proxy"], default=["echo"])
    parser.add_argument("--workdir", type=Path, help="keep wstest's reports here")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="wsrelay-autobahn-"))
    runners = {"echo": run_echo, "client": run_client, "proxy": run_proxy}
    results = []
    for side in args.sides:
        started = time.monotonic()
        report = runners[side](workdir)
        results.append(SideResult(side, report, time.monotonic() - started))
        print(report.summary(), flush=True)
    text = markdown(results)
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text)
        print(f"results written to {args.markdown}")
    return 1 if any(r.report.failed for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
