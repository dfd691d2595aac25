"""Runs Autobahn|Testsuite (wstest) and reads its verdicts.

wstest is Python 2 only, so it lives in its own virtualenv made by scripts/autobahn/setup.sh.
It always exits 0: the verdicts are read from the ``index.json`` it writes. A case counts as
failed only when wstest says FAILED; OK, NON-STRICT and INFORMATIONAL move between runs of the
same peer, so gating on them would make the suite flaky without finding anything.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = ROOT / "scripts" / "autobahn" / "setup.sh"
AGENT = "wsrelay"

#: 9.* cases send messages up to 16 MiB: a route under test must let them through.
AUTOBAHN_MESSAGE_BYTES = 20 * 1024 * 1024

#: Cases 1-11: framing, pings, reserved bits, opcodes, fragmentation, UTF-8, close, limits.
CORE_CASES = ["1.*", "2.*", "3.*", "4.*", "5.*", "6.*", "7.*", "9.*", "10.*"]
#: permessage-deflate: 12.* and 13.* need a peer that negotiates compression.
COMPRESSION_CASES = ["12.*", "13.*"]
#: The quick subset of the compression cases, for routes with ``compress`` on: 1000 messages of
#: 16 B to 8 KiB each, with the default and with the smallest window (about 15 s; all of
#: 12.1/13.1 take three minutes).
COMPRESSION_SMOKE_CASES = [f"{group}.1.{n}" for group in (12, 13) for n in range(1, 7)]


def echo_route(path: str = "/echo", **options: Any) -> dict[str, Any]:
    """A route every Autobahn case can run on: messages up to AUTOBAHN_MESSAGE_BYTES, and no
    keepalive pings (wstest records every frame, so an unsolicited ping would count against a
    long case). `options` add to it or override it (`mode="proxy"`, `compress=True`)."""
    return {
        "path": path,
        "mode": "echo",
        "max_message_bytes": AUTOBAHN_MESSAGE_BYTES,
        "ping_interval": 0,
        **options,
    }


# fuzzing.py imports listenWS by name and binds every interface; this rebinds it to loopback so
# the fuzzingserver is never reachable from outside the machine while it runs.
_LOOPBACK_BOOTSTRAP = """
import sys
from autobahn.twisted import websocket
from autobahntestsuite import fuzzing, wstest

def listen_loopback(factory, contextFactory=None, backlog=50, interface="127.0.0.1"):
    return websocket.listenWS(factory, contextFactory, backlog, "127.0.0.1")

fuzzing.listenWS = listen_loopback
sys.argv = ["wstest"] + sys.argv[1:]
wstest.run()
"""


class AutobahnUnavailable(RuntimeError):
    """wstest cannot be set up here (no Python 2.7, no package index): tests skip with this."""


class AutobahnError(RuntimeError):
    """wstest ran but did not produce a report (timeout, crash, nobody connected)."""


@dataclass(frozen=True)
class CaseResult:
    """One case's verdict as wstest records it in index.json."""

    case: str
    behavior: str
    behavior_close: str
    remote_close_code: int | None
    duration_ms: int

    @property
    def failed(self) -> bool:
        return "FAILED" in (self.behavior, self.behavior_close)

    def describe(self) -> str:
        return (
            f"{self.case}: behavior={self.behavior} close={self.behavior_close} "
            f"remote_close_code={self.remote_close_code}"
        )


@dataclass(frozen=True)
class Report:
    """All verdicts of one agent, plus where wstest wrote the per-case details."""

    agent: str
    results: list[CaseResult]
    outdir: Path

    @property
    def failed(self) -> list[CaseResult]:
        return [r for r in self.results if r.failed]

    def counts(self) -> Counter[str]:
        """Cases per behavior, e.g. {'OK': 290, 'NON-STRICT': 4, 'INFORMATIONAL': 3}."""
        return Counter(r.behavior for r in self.results)

    def summary(self) -> str:
        counts = ", ".join(f"{n} {behavior}" for behavior, n in sorted(self.counts().items()))
        lines = [f"{self.agent}: {len(self.results)} cases ({counts}); reports in {self.outdir}"]
        lines += [f"  FAILED {r.describe()} (see {self.outdir}/)" for r in self.failed]
        return "\n".join(lines)


def wstest_path() -> Path:
    """Returns wstest, creating its Python 2.7 virtualenv on first use (about a minute)."""
    try:
        proc = subprocess.run(
            ["bash", str(SETUP_SCRIPT)], capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise AutobahnUnavailable(f"{SETUP_SCRIPT} timed out after {exc.timeout} s") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise AutobahnUnavailable(f"{SETUP_SCRIPT} exited {proc.returncode}: {tail}")
    return Path(proc.stdout.strip().splitlines()[-1])


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the caller binds it at once)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_report(outdir: Path, agent: str = AGENT) -> Report:
    """Parses wstest's index.json for one agent."""
    index = outdir / "index.json"
    if not index.exists():
        raise AutobahnError(f"wstest wrote no {index}")
    data = json.loads(index.read_text())
    if agent not in data:
        raise AutobahnError(f"{index} has no agent {agent!r} (agents: {sorted(data)})")
    results = [
        CaseResult(
            case=case,
            behavior=entry["behavior"],
            behavior_close=entry["behaviorClose"],
            remote_close_code=entry.get("remoteCloseCode"),
            duration_ms=entry.get("duration", 0),
        )
        for case, entry in data[agent].items()
    ]
    results.sort(key=lambda r: [int(part) for part in r.case.split(".")])
    return Report(agent=agent, results=results, outdir=outdir)


def _run_wstest(
    wstest: Path, mode: str, spec: dict[str, object], workdir: Path
) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    spec_file = workdir / f"{mode}.json"
    spec_file.write_text(json.dumps(spec, indent=2))
    python2 = wstest.parent / "python"
    log = (workdir / f"{mode}.log").open("wb")
    return subprocess.Popen(
        [str(python2), "-c", _LOOPBACK_BOOTSTRAP, "-m", mode, "-s", str(spec_file), "-u", "0"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )


def _log_tail(workdir: Path, mode: str, lines: int = 15) -> str:
    log = workdir / f"{mode}.log"
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def run_fuzzingclient(
    url: str,
    workdir: Path,
    cases: Sequence[str] = CORE_CASES,
    exclude: Sequence[str] = (),
    agent: str = AGENT,
    timeout: float = 600.0,
    wstest: Path | None = None,
) -> Report:
    """Points wstest's fuzzing client at ``url`` (a WebSocket server) and returns its verdicts."""
    wstest = wstest or wstest_path()
    outdir = workdir / "reports"
    spec: dict[str, object] = {
        "outdir": str(outdir),
        "servers": [{"agent": agent, "url": url}],
        "cases": list(cases),
        "exclude-cases": list(exclude),
        "exclude-agent-cases": {},
    }
    proc = _run_wstest(wstest, "fuzzingclient", spec, workdir)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        proc.kill()
        proc.wait()
        tail = _log_tail(workdir, "fuzzingclient")
        raise AutobahnError(f"wstest fuzzingclient timed out after {timeout} s:\n{tail}") from exc
    try:
        return read_report(outdir, agent)
    except AutobahnError as exc:
        raise AutobahnError(f"{exc}\n{_log_tail(workdir, 'fuzzingclient')}") from exc


@dataclass
class FuzzingServer:
    """A running wstest fuzzingserver: clients fetch cases from ``url`` (``/runCase?...``)."""

    url: str
    workdir: Path
    case_count_hint: int = 0

    @property
    def outdir(self) -> Path:
        return self.workdir / "reports"

    def case_url(self, case: int, agent: str = AGENT) -> str:
        return f"{self.url}/runCase?case={case}&agent={agent}"

    def update_reports_url(self, agent: str = AGENT) -> str:
        return f"{self.url}/updateReports?agent={agent}"

    def report(self, agent: str = AGENT) -> Report:
        return read_report(self.outdir, agent)


def _wait_listening(proc: subprocess.Popen[bytes], port: int, deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AutobahnError(f"wstest fuzzingserver exited {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise AutobahnError(f"wstest fuzzingserver did not listen on 127.0.0.1:{port}")


@contextmanager
def fuzzingserver(
    workdir: Path,
    cases: Sequence[str] = CORE_CASES,
    exclude: Sequence[str] = (),
    wstest: Path | None = None,
    startup_timeout: float = 30.0,
) -> Iterator[FuzzingServer]:
    """Runs wstest's fuzzing server on a free loopback port for the duration of the block."""
    wstest = wstest or wstest_path()
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    spec: dict[str, object] = {
        "url": url,
        "outdir": str(workdir / "reports"),
        "cases": list(cases),
        "exclude-cases": list(exclude),
        "exclude-agent-cases": {},
    }
    proc = _run_wstest(wstest, "fuzzingserver", spec, workdir)
    try:
        _wait_listening(proc, port, time.monotonic() + startup_timeout)
        yield FuzzingServer(url=url, workdir=workdir)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """``python tests/conformance/autobahn.py URL OUTDIR [CASES...]``: one fuzzingclient run.

    Prints the summary and exits 1 if any case FAILED; used by ``make conformance-full``.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print(main.__doc__, file=sys.stderr)
        return 2
    url, outdir, *cases = args
    timeout = float(os.environ.get("AUTOBAHN_TIMEOUT", "3600"))
    report = run_fuzzingclient(url, Path(outdir), cases or CORE_CASES, timeout=timeout)
    print(report.summary())
    return 1 if report.failed else 0


if __name__ == "__main__":
    sys.exit(main())
