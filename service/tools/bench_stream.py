"""`wsrelay bench --receive`: what one connection to a `stream` route received, checked.

A stream message carries `seq` (0, 1, 2, ... per connection) and `ts` (the server's Unix time in
ns when it made the message; SPEC.md): a text message is a JSON object with both, a binary one
starts with them as two unsigned 64-bit big-endian integers. From them: loss (seqs never seen,
including a missing tail when the URL's `count` says how many were due), order, duplicates and
the one-way delay, arrival minus `ts`, which includes any injected `delay` and `throttle`.
The delay compares two clocks: exact on one host, as good as their sync between two.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

_BINARY_HEAD = struct.Struct("!QQ")


def parse_stream_message(data: str | bytes) -> tuple[int, int]:
    """(seq, ts in ns) of one stream message; ValueError when it is not one."""
    if isinstance(data, bytes):
        if len(data) < _BINARY_HEAD.size:
            raise ValueError("binary message shorter than seq and ts")
        seq, ts = _BINARY_HEAD.unpack_from(data)
        return int(seq), int(ts)
    try:
        message = json.loads(data)
        seq, ts = message["seq"], message["ts"]
    except (ValueError, TypeError, KeyError):
        raise ValueError("not a JSON object with seq and ts") from None
    if not isinstance(seq, int) or not isinstance(ts, int) or seq < 0:
        raise ValueError("seq and ts are not whole numbers")
    return seq, ts


def expected_count(url: str) -> int | None:
    """The stream's `count` when the URL's query sets it (then a missing tail is loss too)."""
    values = [v for k, v in parse_qsl(urlsplit(url).query) if k == "count"]
    if values and values[-1].isdigit():
        return int(values[-1])
    return None


@dataclass
class StreamCheck:
    """One connection's accounting: what arrived against the seqs the server numbered.

    It remembers only the seqs still missing below the highest seen, so its memory follows
    the loss, not the length of the stream.
    """

    received: int = 0
    #: Arrivals that filled an earlier gap (a seq below the highest, not seen before).
    out_of_order: int = 0
    duplicates: int = 0
    #: Arrivals whose ts lies in the future of this host's clock (the clocks disagree).
    clock_ahead: int = 0
    highest: int = -1

    def __post_init__(self) -> None:
        self._missing: set[int] = set()

    def arrived(self, seq: int, ts: int, now_ns: int) -> float:
        """Records one arrival; returns its one-way delay in seconds (0 when the clock is ahead)."""
        self.received += 1
        if seq > self.highest:
            self._missing.update(range(self.highest + 1, seq))
            self.highest = seq
        elif seq in self._missing:
            self._missing.discard(seq)
            self.out_of_order += 1
        else:
            self.duplicates += 1
        delay = (now_ns - ts) / 1e9
        if delay < 0:
            self.clock_ahead += 1
            return 0.0
        return delay

    def lost(self, expected: int | None, complete: bool) -> int:
        """Seqs never seen: gaps below the highest, and the tail when the stream ended (closed
        by the server) with fewer than `expected`."""
        tail = max(0, expected - self.highest - 1) if expected is not None and complete else 0
        return len(self._missing) + tail
