"""The fault parameter model: durations, bounds, one line naming the parameter, route settings."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from service.faults import (
    FAULT_NAMES,
    NO_FAULTS,
    FaultError,
    Faults,
    faults_from_query,
    faults_from_settings,
    http_echo_from_query,
    params,
    parse_duration,
    stream_from_query,
)
from service.faults.params import Stream
from service.settings import Route, Settings, problems


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("2s", 2.0), ("1.5", 1.5), ("0", 0.0), (".5s", 0.5), ("1m", 60.0)],
)
def test_durations_take_a_unit_or_are_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ms", "-1s", "1h", "nan", "inf", "1e3", "2 s s", "½s"])
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**9))
def test_milliseconds_and_seconds_agree(millis: int) -> None:
    assert parse_duration(f"{millis}ms") == pytest.approx(parse_duration(f"{millis / 1000}"))


def test_the_query_sets_faults_over_the_routes_defaults_and_ignores_the_rest() -> None:
    defaults = Faults(delay=0.1, drop=0.5)
    query = {"delay": "250ms", "jitter": "50ms", "seed": "7", "no_pong": "", "token": "x"}
    faults = faults_from_query(query, defaults)
    assert faults == Faults(delay=0.25, jitter=0.05, drop=0.5, no_pong=True, seed=7)


@pytest.mark.parametrize(
    ("query", "param", "says"),
    [
        ({"delay": "31s"}, "delay", "above the maximum 30s"),
        ({"jitter": "1h"}, "jitter", "not a duration"),
        ({"drop": "1.01"}, "drop", "outside 0-1"),
        ({"drop": "nan"}, "drop", "not a number"),
        ({"close_after": "-1"}, "close_after", "not a whole number"),
        ({"close_after": "1000000001"}, "close_after", "above the maximum"),
        ({"close_in": "2d"}, "close_in", "not a duration"),
        ({"close_code": "1006"}, "close_code", "cannot be sent in a close frame"),
        ({"close_code": "abc"}, "close_code", "not a whole number"),
        ({"close_reason": "é" * 62}, "close_reason", "124 bytes is above the maximum 123"),
        ({"abort_in": "86401"}, "abort_in", "above the maximum 86400s"),
        ({"no_pong": "maybe"}, "no_pong", "not a flag"),
        ({"hang_in": "x"}, "hang_in", "not a duration"),
        ({"fragment": "15"}, "fragment", "outside 16-16777216 bytes"),
        ({"throttle": "1023"}, "throttle", "outside 1024-1073741824 bytes/s"),
        ({"reject": "302"}, "reject", "outside 400-599"),
        ({"reject_rate": "2"}, "reject_rate", "outside 0-1"),
        ({"handshake_delay": "31s"}, "handshake_delay", "above the maximum 30s"),
        ({"seed": str(2**63)}, "seed", "above the maximum"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_parameter(
    query: dict[str, str], param: str, says: str
) -> None:
    with pytest.raises(FaultError) as raised:
        faults_from_query(query, NO_FAULTS)
    assert raised.value.param == param
    line = str(raised.value)
    assert line.startswith(f"{param}: ")
    assert says in line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("query", "faults"),
    [
        ({"fragment": "0"}, Faults()),
        ({"fragment": "16"}, Faults(fragment=16)),
        ({"throttle": "1024"}, Faults(throttle=1024)),
        ({"delay": "30s", "jitter": "30s"}, Faults(delay=30.0, jitter=30.0)),
        (
            {"close_code": "4999", "close_reason": "bye"},
            Faults(close_code=4999, close_reason="bye"),
        ),
        ({"close_after": "0"}, Faults(close_after=0)),
        ({"reject": "429"}, Faults(reject=429)),
        ({"reject_rate": "0.3"}, Faults(reject=503, reject_rate=0.3)),
        ({"no_pong": "false"}, Faults()),
    ],
)
def test_values_at_the_bounds_are_taken(query: dict[str, str], faults: Faults) -> None:
    assert faults_from_query(query, NO_FAULTS) == faults


def test_sends_plain_is_false_for_every_fault_on_the_send_path_only() -> None:
    on_send_path = [
        Faults(delay=0.1),
        Faults(jitter=0.1),
        Faults(drop=0.1),
        Faults(close_after=1),
        Faults(close_in=1.0),
        Faults(abort_after=1),
        Faults(abort_in=1.0),
        Faults(no_pong=True),
        Faults(hang_in=1.0),
        Faults(fragment=16),
        Faults(throttle=1024),
    ]
    assert [f.sends_plain for f in on_send_path] == [False] * len(on_send_path)
    handshake_only = [Faults(reject=503), Faults(handshake_delay=1.0), Faults(seed=3)]
    assert [f.sends_plain for f in handshake_only] == [True, True, True]
    assert [f.none for f in handshake_only] == [False, False, True]
    assert NO_FAULTS.sends_plain
    assert NO_FAULTS.none


def test_enabled_names_the_metric_labels_of_what_is_set() -> None:
    assert NO_FAULTS.enabled() == ()
    every = Faults(
        delay=0.1,
        drop=0.1,
        close_in=1.0,
        abort_after=3,
        no_pong=True,
        hang_in=2.0,
        fragment=16,
        throttle=2048,
        reject=503,
        handshake_delay=0.5,
    )
    assert every.enabled() == FAULT_NAMES
    assert Faults(jitter=0.2, close_code=4000).enabled() == ("delay",)


def test_route_settings_use_the_same_parsers_and_bounds() -> None:
    assert faults_from_settings({"delay": "50ms", "drop": 0.02, "no_pong": True}) == Faults(
        delay=0.05, drop=0.02, no_pong=True
    )
    with pytest.raises(FaultError, match=r"^delay: 60s is above the maximum 30s$"):
        faults_from_settings({"delay": 60})
    with pytest.raises(FaultError, match=r"^dealy: unknown fault"):
        faults_from_settings({"dealy": 1})
    with pytest.raises(FaultError, match=r"^no_pong: "):
        faults_from_settings({"no_pong": "sometimes"})


def route_problems(route: dict[str, Any]) -> list[str]:
    with pytest.raises(ValidationError) as raised:
        Settings(routes=[route])
    return problems(raised.value)


def test_a_routes_faults_are_checked_at_startup_in_one_line() -> None:
    [line] = route_problems({"path": "/f", "mode": "echo", "faults": {"fragment": 4}})
    assert line.startswith("WSRELAY_ROUTES[0].faults: fragment: 4 is outside 16-")
    [line] = route_problems({"path": "/f", "mode": "echo", "faults": "slow"})
    assert "WSRELAY_ROUTES[0].faults: 'slow' is not an object of fault parameters" in line


def test_a_route_shows_only_the_faults_it_sets() -> None:
    route = Route.model_validate(
        {"path": "/f", "mode": "echo", "faults": {"delay": "50ms"}, "query_overrides": True}
    )
    assert route.faults == Faults(delay=0.05)
    assert route.model_dump(mode="json", exclude_defaults=True) == {
        "path": "/f",
        "mode": "echo",
        "faults": {"delay": 0.05},
        "query_overrides": True,
    }
    plain = Route(path="/echo", mode="echo")
    assert plain.faults is NO_FAULTS
    assert not plain.query_overrides
    assert "faults" not in plain.model_dump(exclude_defaults=True)


def test_stream_options_belong_to_stream_routes() -> None:
    [line] = route_problems({"path": "/e", "mode": "echo", "rate": 5})
    assert "rate do not apply to echo routes" in line


def test_stream_query_keeps_rate_times_size_bounded() -> None:
    assert stream_from_query({"rate": "100", "size": "1024", "count": "5"}, Stream()) == Stream(
        rate=100.0, size=1024, count=5
    )
    assert stream_from_query({"duration": "2s", "binary": "1"}, Stream()).duration == 2.0
    with pytest.raises(FaultError) as raised:
        stream_from_query({"rate": "10000", "size": "1048576"}, Stream())
    assert raised.value.param == "size"
    assert "bytes/s is above the maximum" in str(raised.value)
    with pytest.raises(FaultError) as raised:
        stream_from_query({"rate": "10000"}, Stream(size=params.MAX_SIZE))
    assert raised.value.param == "rate"
    for query in ({"rate": "0"}, {"count": "0"}, {"size": "-1"}, {"duration": "0"}):
        with pytest.raises(FaultError) as raised:
            stream_from_query(query, Stream())
        assert raised.value.param in query


def test_http_echo_takes_status_and_delay() -> None:
    echo = http_echo_from_query({"status": "503", "delay": "20ms", "drop": "1"})
    assert (echo.status, echo.delay) == (503, 0.02)
    with pytest.raises(FaultError, match=r"^status: 100 is outside 200-599$"):
        http_echo_from_query({"status": "100"})
