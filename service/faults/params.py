"""The per-connection fault parameters and their bounds: one model for route settings and query.

A route's `faults` object and, with `query_overrides`, a handshake's query string are read by
the same parsers against the same bounds, so a value a route may not have cannot come in by the
query either. Socket-free: everything here is tested without a server.

Every bad value raises `FaultError`, whose text is the one line the client gets with its 400:
it names the parameter, the value and what is expected.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from ..closecodes import is_sendable

# -- bounds (README "Testing your client" has them as a table) --------------------------------
#: Longest wait a message may get from `delay` (and, separately, from `jitter`).
MAX_DELAY = 30.0
MAX_JITTER = 30.0
#: Longest `close_in`, `abort_in`, `hang_in` and stream `duration`: one day.
MAX_TIMER = 86_400.0
#: Longest `handshake_delay`: past it a client's own handshake timeout has long fired.
MAX_HANDSHAKE_DELAY = 30.0
#: Largest `close_after`/`abort_after` and stream `count`.
MAX_COUNT = 1_000_000_000
#: Smallest `fragment` (bytes per frame): smaller frames would cost more in headers than data.
MIN_FRAGMENT = 16
MAX_FRAGMENT = 16 * 1024 * 1024
#: Slowest and fastest `throttle` (bytes per second).
MIN_THROTTLE = 1024
MAX_THROTTLE = 1024 * 1024 * 1024
#: Longest `close_reason`: a close frame holds 123 bytes of reason.
MAX_CLOSE_REASON_BYTES = 123
#: HTTP statuses `reject` may answer with (client and server errors).
MIN_REJECT_STATUS, MAX_REJECT_STATUS = 400, 599
#: The status `reject_rate` refuses with when `reject` is not given.
DEFAULT_REJECT_STATUS = 503
MAX_SEED = 2**63 - 1
#: Stream mode: messages per second, bytes per message, and their product per connection.
MAX_RATE = 10_000.0
MAX_SIZE = 1024 * 1024
MAX_STREAM_BYTES_PER_SECOND = 16 * 1024 * 1024
#: http_echo: the statuses `status` may ask for.
MIN_ECHO_STATUS, MAX_ECHO_STATUS = 200, 599

#: Fault names as the metric wsrelay_faults_injected_total labels them (SPEC.md).
FAULT_NAMES = (
    "delay",
    "drop",
    "close",
    "abort",
    "no_pong",
    "hang",
    "fragment",
    "throttle",
    "reject",
    "handshake_delay",
)


class FaultError(ValueError):
    """A parameter's value is malformed or out of bounds; `str()` is the one-line 400 body."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        #: The parameter's name, as the query string or the route's settings spell it.
        self.param = param


# -- value parsers: text (query) or JSON/YAML values (settings) -------------------------------
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}
_TRUE = frozenset({"", "1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def parse_duration(text: str) -> float:
    """Seconds from "250ms", "2s", "1.5m" or a bare number of seconds; ValueError otherwise."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (expected e.g. 250ms, 2s or seconds)")
    return float(match[1]) * _UNITS[match[2]]


def _duration(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int | float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{value!r} is not a duration (expected seconds, 0 or more)")
        return float(value)
    return parse_duration(str(value))


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a number")
    return number


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a whole number")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r} is not a whole number (0 or more)")
        return value
    text = str(value).strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"{value!r} is not a whole number")
    return int(text)


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{value!r} is not a flag (expected true/false, 1/0)")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not text")
    return value


def _seconds(limit: float) -> str:
    return f"{limit:g}s"


#: A bound: None when the value is within it, else what is wrong (the 400 line's tail).
Check = Callable[[Any], str | None]


def _within(low: float, high: float, shown: Callable[[float], str] = "{:g}".format) -> Check:
    def check(value: float) -> str | None:
        if low <= value <= high:
            return None
        return f"{shown(value)} is outside {shown(low)}-{shown(high)}"

    return check


def _at_most(high: float, shown: Callable[[float], str] = "{:g}".format) -> Check:
    def check(value: float) -> str | None:
        return None if value <= high else f"{shown(value)} is above the maximum {shown(high)}"

    return check


def _off_or_within(low: int, high: int, unit: str) -> Check:
    def check(value: int) -> str | None:
        if value == 0 or low <= value <= high:
            return None
        return f"{value} is outside {low}-{high} {unit} (0 turns it off)"

    return check


def _close_code(code: int) -> str | None:
    if is_sendable(code):
        return None
    return f"{code} cannot be sent in a close frame (1000-1003, 1007-1014 or 3000-4999)"


def _reason(reason: str) -> str | None:
    size = len(reason.encode())
    if size <= MAX_CLOSE_REASON_BYTES:
        return None
    return f"{size} bytes is above the maximum {MAX_CLOSE_REASON_BYTES} bytes"


@dataclass(frozen=True, slots=True)
class _Param:
    parse: Callable[[Any], Any]
    check: Check


_FAULT_PARAMS: dict[str, _Param] = {
    "delay": _Param(_duration, _at_most(MAX_DELAY, _seconds)),
    "jitter": _Param(_duration, _at_most(MAX_JITTER, _seconds)),
    "drop": _Param(_number, _within(0.0, 1.0)),
    "close_after": _Param(_integer, _at_most(MAX_COUNT)),
    "close_in": _Param(_duration, _at_most(MAX_TIMER, _seconds)),
    "close_code": _Param(_integer, _close_code),
    "close_reason": _Param(_text, _reason),
    "abort_after": _Param(_integer, _at_most(MAX_COUNT)),
    "abort_in": _Param(_duration, _at_most(MAX_TIMER, _seconds)),
    "no_pong": _Param(_flag, lambda value: None),
    "hang_in": _Param(_duration, _at_most(MAX_TIMER, _seconds)),
    "fragment": _Param(_integer, _off_or_within(MIN_FRAGMENT, MAX_FRAGMENT, "bytes")),
    "throttle": _Param(_integer, _off_or_within(MIN_THROTTLE, MAX_THROTTLE, "bytes/s")),
    "reject": _Param(_integer, _within(MIN_REJECT_STATUS, MAX_REJECT_STATUS)),
    "reject_rate": _Param(_number, _within(0.0, 1.0)),
    "handshake_delay": _Param(_duration, _at_most(MAX_HANDSHAKE_DELAY, _seconds)),
    "seed": _Param(_integer, _at_most(MAX_SEED)),
}

#: Every fault parameter's name, as the query string and a route's `faults` spell it.
FAULT_PARAMS = tuple(_FAULT_PARAMS)


@dataclass(frozen=True, slots=True)
class Faults:
    """What a connection's server side does wrong on purpose (SPEC.md's table); all off by default.

    `reject` with `reject_rate` 0 refuses every handshake; with a rate, that share of them.
    """

    delay: float = 0.0  # seconds
    jitter: float = 0.0  # seconds
    drop: float = 0.0  # probability 0-1
    close_after: int | None = None
    close_in: float | None = None
    close_code: int = 1000
    close_reason: str = ""
    abort_after: int | None = None
    abort_in: float | None = None
    no_pong: bool = False
    hang_in: float | None = None
    fragment: int = 0  # max payload bytes per frame, 0 off
    throttle: int = 0  # bytes per second, 0 off
    reject: int | None = None  # HTTP status
    reject_rate: float = 0.0  # probability; with reject
    handshake_delay: float = 0.0
    seed: int | None = None

    @property
    def sends_plain(self) -> bool:
        """True when nothing alters what the server sends: the connection's usual send path."""
        return (
            self.delay == 0
            and self.jitter == 0
            and self.drop == 0
            and self.fragment == 0
            and self.throttle == 0
            and self.close_after is None
            and self.close_in is None
            and self.abort_after is None
            and self.abort_in is None
            and not self.no_pong
            and self.hang_in is None
        )

    @property
    def none(self) -> bool:
        """True when no fault at all is set (the seed alone is no fault)."""
        return (
            self.sends_plain
            and self.reject is None
            and self.reject_rate == 0
            and self.handshake_delay == 0
        )

    def enabled(self) -> tuple[str, ...]:
        """The metric's fault names this setting can inject (for initialising the series)."""
        on = {
            "delay": self.delay > 0 or self.jitter > 0,
            "drop": self.drop > 0,
            "close": self.close_after is not None or self.close_in is not None,
            "abort": self.abort_after is not None or self.abort_in is not None,
            "no_pong": self.no_pong,
            "hang": self.hang_in is not None,
            "fragment": self.fragment > 0,
            "throttle": self.throttle > 0,
            "reject": self.reject is not None,
            "handshake_delay": self.handshake_delay > 0,
        }
        return tuple(name for name in FAULT_NAMES if on[name])


NO_FAULTS = Faults()


def _parse(table: Mapping[str, _Param], name: str, raw: Any) -> Any:
    param = table[name]
    try:
        value = param.parse(raw)
    except ValueError as error:
        raise FaultError(name, str(error)) from None
    problem = param.check(value)
    if problem is not None:
        raise FaultError(name, problem)
    return value


def _faults(values: Mapping[str, Any], defaults: Faults) -> Faults:
    changes = {name: _parse(_FAULT_PARAMS, name, values[name]) for name in values}
    faults = replace(defaults, **changes)
    if faults.reject_rate > 0 and faults.reject is None:
        faults = replace(faults, reject=DEFAULT_REJECT_STATUS)
    return faults


def faults_from_query(query: Mapping[str, str], defaults: Faults) -> Faults:
    """`defaults` with the fault parameters of a handshake's query string applied.

    Other query parameters are the application's and are ignored. Raises FaultError.
    """
    return _faults({name: query[name] for name in FAULT_PARAMS if name in query}, defaults)


def faults_from_settings(values: Mapping[str, Any]) -> Faults:
    """A route's `faults` object (JSON/YAML values or text); an unknown name is an error."""
    unknown = sorted(set(values) - set(_FAULT_PARAMS))
    if unknown:
        raise FaultError(unknown[0], f"unknown fault (known: {', '.join(FAULT_PARAMS)})")
    return _faults(values, NO_FAULTS)


def faults_settings(faults: Faults) -> dict[str, Any]:
    """The parameters of `faults` that are set (what /routes and check-config show)."""
    return {
        f.name: getattr(faults, f.name)
        for f in fields(faults)
        if getattr(faults, f.name) != getattr(NO_FAULTS, f.name)
    }


# -- stream mode -------------------------------------------------------------------------------
_STREAM_PARAMS: dict[str, _Param] = {
    "rate": _Param(_number, _within(0.001, MAX_RATE)),
    "size": _Param(_integer, _at_most(MAX_SIZE)),
    "count": _Param(_integer, _within(1, MAX_COUNT)),
    "duration": _Param(_duration, _within(0.001, MAX_TIMER, _seconds)),
    "binary": _Param(_flag, lambda value: None),
}
STREAM_PARAMS = tuple(_STREAM_PARAMS)


@dataclass(frozen=True, slots=True)
class Stream:
    """What a stream route pushes to each client: `rate` messages a second of `size` bytes,
    `count` of them or for `duration` seconds (None: until the client leaves)."""

    rate: float = 1.0
    size: int = 0  # 0: the bare JSON object (binary: 16 bytes, seq and ts)
    count: int | None = None
    duration: float | None = None
    binary: bool = False


def _stream(values: Mapping[str, Any], defaults: Stream) -> Stream:
    changes = {name: _parse(_STREAM_PARAMS, name, values[name]) for name in values}
    stream = replace(defaults, **changes)
    if stream.rate * stream.size > MAX_STREAM_BYTES_PER_SECOND:
        name = "size" if "size" in changes or "rate" not in changes else "rate"
        raise FaultError(
            name,
            f"rate x size = {stream.rate * stream.size:.0f} bytes/s is above the maximum "
            f"{MAX_STREAM_BYTES_PER_SECOND} bytes/s per connection",
        )
    return stream


def stream_from_query(query: Mapping[str, str], defaults: Stream) -> Stream:
    """`defaults` with a handshake's `rate`, `size`, `count`, `duration`, `binary` applied."""
    return _stream({name: query[name] for name in STREAM_PARAMS if name in query}, defaults)


def stream_from_settings(values: Mapping[str, Any]) -> Stream:
    """A stream route's options; None values keep the defaults."""
    return _stream({k: v for k, v in values.items() if v is not None}, Stream())


# -- http_echo mode ----------------------------------------------------------------------------
_ECHO_PARAMS: dict[str, _Param] = {
    "status": _Param(_integer, _within(MIN_ECHO_STATUS, MAX_ECHO_STATUS)),
    "delay": _Param(_duration, _at_most(MAX_DELAY, _seconds)),
}


@dataclass(frozen=True, slots=True)
class HttpEcho:
    """What an http_echo request asked for with `status` and `delay` (query_overrides)."""

    status: int = 200
    delay: float = 0.0


def http_echo_from_query(query: Mapping[str, str]) -> HttpEcho:
    """The `status` and `delay` of an http_echo request's query string. Raises FaultError."""
    changes = {
        name: _parse(_ECHO_PARAMS, name, query[name]) for name in _ECHO_PARAMS if name in query
    }
    return replace(HttpEcho(), **changes)
