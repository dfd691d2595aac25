"""`python -m bench.instructions`: user-space instructions per message, counted by callgrind.

The throughput ratios (`python -m bench`) are CPU-seconds on a shared VM, which moved by up to
1.9x between rounds on one machine. An instruction count does not: valgrind's callgrind counts
every instruction the server executes in user space (Python, uvloop, aiohttp's C parts, libc),
and the same code under the same load gives the same count whatever else the machine is doing.
It leaves out the kernel (the socket reads and writes, about half of a proxied message's CPU
here: see NOTES.md), so it measures what wsrelay's own code costs, which is what a change to
the hot path moves.

Each server runs under `valgrind --tool=callgrind --instr-atstart=no`; a client opens
`--conns` connections, sends 20 round trips each (warm-up: the proxy starts relaying from the
second message), then callgrind is switched on for `--messages` closed-loop round trips of 32 B
text, off again, and its total is divided by the message count. Rows: wsrelay's echo route (W1),
bare aiohttp's echo, picows' echo, and wsrelay's proxy route relaying to the bare aiohttp echo
(W5; the upstream runs outside valgrind, only wsrelay is counted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp

from bench.harness import running
from bench.targets import Target, python_peer, wsrelay
from bench.workloads import echo_upstream, proxy_target

MESSAGE = "x" * 32
WARMUP_ROUND_TRIPS = 20


@dataclass
class Row:
    name: str
    label: str
    instructions: int
    messages: int

    @property
    def per_message(self) -> float:
        return self.instructions / self.messages


def _under_callgrind(target: Target, out: Path) -> Target:
    """`target` started under callgrind, counting nothing until `_callgrind("-i on")`."""
    argv = target.argv
    return replace(target, argv=lambda port: [
        "valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
        *argv(port)])  # fmt: skip


def _callgrind(command: str, pid: int) -> None:
    subprocess.run(
        ["callgrind_control", *command.split(), str(pid)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


async def _round_trips(url: str, conns: int, messages: int, pid: int) -> None:
    timeout = aiohttp.ClientWSTimeout(ws_receive=120, ws_close=30)
    async with aiohttp.ClientSession() as session:
        sockets = [await session.ws_connect(url, timeout=timeout) for _ in range(conns)]

        async def loop(ws: aiohttp.ClientWebSocketResponse, n: int) -> None:
            for _ in range(n):
                await ws.send_str(MESSAGE)
                reply = await ws.receive()
                if reply.data != MESSAGE:
                    raise RuntimeError(f"unexpected reply {reply!r}")

        await asyncio.gather(*(loop(ws, WARMUP_ROUND_TRIPS) for ws in sockets))
        _callgrind("-i on", pid)
        await asyncio.gather(*(loop(ws, messages // conns) for ws in sockets))
        _callgrind("-i off", pid)
        _callgrind("-d", pid)
        for ws in sockets:
            await ws.close()


def count(target: Target, path: str, conns: int, messages: int) -> Row:
    """Instructions `target` executes in user space for `messages` echoed messages."""
    with tempfile.TemporaryDirectory(prefix="wsrelay-callgrind-") as tmp:
        out = Path(tmp) / "callgrind.out"
        # Python under valgrind takes seconds to start listening, more on a loaded machine.
        with running(_under_callgrind(target, out), Path(tmp), listen_timeout=300) as server:
            url = target.url(server.port, path)
            asyncio.run(_round_trips(url, conns, messages, server.pid))
        total = 0
        for dump in Path(tmp).glob("callgrind.out*"):
            for line in dump.read_text().splitlines():
                if line.startswith("totals:"):
                    total += int(line.split()[1])
    sent = messages // conns * conns
    return Row(target.name, target.label, total, sent)


def run(conns: int, messages: int) -> list[Row]:
    rows = [
        count(wsrelay("wsrelay echo route (W1)"), "/echo", conns, messages),
        count(echo_upstream(), "/echo", conns, messages),
    ]
    picows = python_peer("picows", "picows", "picows_echo.py", module="picows")
    if picows.missing is None:
        rows.append(count(picows, "/echo", conns, messages))
    with ExitStack() as stack, tempfile.TemporaryDirectory() as logdir:
        relay = proxy_target(stack, Path(logdir))  # its upstream runs, uncounted
        relay.label = "wsrelay proxy route (W5)"
        relay.name = "wsrelay-proxy"
        rows.append(count(relay, "/proxy", conns, messages))
    return rows


def render(rows: list[Row], conns: int) -> str:
    base = next(r for r in rows if r.name == "direct")
    lines = [
        f"User-space instructions per 32 B text round trip (callgrind; {conns} connections, "
        f"{rows[0].messages:,} messages counted per row):",
        "",
        "| server | instructions per message | vs bare aiohttp echo |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {r.label} | {r.per_message:,.0f} | {r.per_message / base.per_message:.2f}x |"
        for r in rows
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conns", type=int, default=20)
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("bench.instructions needs valgrind (Debian package valgrind)")
    rows = run(args.conns, args.messages)
    text = render(rows, args.conns)
    print(text, end="")
    print(json.dumps([{**vars(r), "per_message": round(r.per_message)} for r in rows]))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)


if __name__ == "__main__":
    main()
