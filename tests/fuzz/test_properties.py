"""Properties of the socket-free rules: close-code mapping and settings parsing, for any input.

The close-code rules decide what a peer sees and what the metrics count, for codes a hostile
peer chooses; settings parsing meets whatever an operator (or a template) puts in the
environment. Neither may raise anything but its documented error, or leak a secret.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service import closecodes
from service.settings import (
    ENV_PREFIX,
    RESERVED_PATHS,
    Settings,
    SettingsProblem,
    load_settings,
)

SENDABLE = set(range(1000, 1004)) | set(range(1007, 1015)) | set(range(3000, 5000))
codes = st.one_of(st.integers(0, 0xFFFF), st.sampled_from(sorted(SENDABLE | {1005, 1006, 1015})))
PROPERTIES = settings(max_examples=300, deadline=None, database=None)


# -- close codes ---------------------------------------------------------------------------------
@PROPERTIES
@given(codes)
def test_a_reply_is_always_sendable_and_echoes_valid_codes(code: int) -> None:
    reply = closecodes.reply_code(code)
    assert reply in SENDABLE
    if code in SENDABLE:
        assert reply == code
    elif code != 0:
        assert reply == closecodes.PROTOCOL_ERROR


def test_a_close_without_status_is_answered_1000() -> None:
    assert closecodes.reply_code(None) == closecodes.NORMAL


@PROPERTIES
@given(st.none() | codes)
def test_a_relay_never_turns_an_error_into_1000_nor_sends_a_local_code(code: int | None) -> None:
    relayed = closecodes.relay_code(code)
    assert relayed in SENDABLE
    assert relayed not in closecodes.RESERVED_LOCAL
    if relayed == closecodes.NORMAL:
        assert code == closecodes.NORMAL
    assert relayed == (code if code in SENDABLE else closecodes.BAD_GATEWAY)


@PROPERTIES
@given(st.lists(st.integers(3000, 4999), max_size=5), st.lists(st.none() | codes, max_size=200))
def test_close_code_labels_stay_bounded(extra: list[int], seen: list[int | None]) -> None:
    labels = closecodes.CodeLabels(extra)
    allowed = {str(c) for c in range(1000, 1016)} | {str(c) for c in extra}
    allowed |= {"3xxx", "4xxx", "other"}
    assert {labels(code) for code in seen} <= allowed
    for code in extra:
        assert labels(code) == str(code)


# -- settings ------------------------------------------------------------------------------------
@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Exactly these WSRELAY_* variables for the block (hypothesis runs many in one test)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIX)}
    for key in saved:
        del os.environ[key]
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
            del os.environ[key]
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def _no_dotenv(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # `.env` is read from the working directory


SETTING_NAMES = sorted(ENV_PREFIX + name.upper() for name in Settings.model_fields)
env_values = st.one_of(
    st.text(max_size=30),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", "[]", "{}", "[1,2]", '{"a": 1}', "null", "true", "-1", "1e400"]),
)


@PROPERTIES
@given(st.dictionaries(st.sampled_from(SETTING_NAMES), env_values, max_size=4))
def test_any_environment_loads_or_names_each_problem(env: dict[str, str]) -> None:
    """A bad value is a SettingsProblem with one line per problem, each naming a setting."""
    env = {k: v.replace("\x00", "") for k, v in env.items()}
    lines: list[str] = []
    with environment(env):
        try:
            load_settings()
        except SettingsProblem as problem:
            lines = problem.lines or ["(a SettingsProblem without lines)"]
    for line in lines:
        assert line.startswith((ENV_PREFIX, "settings")), line
        assert "\n" not in line


@PROPERTIES
@given(st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=12, max_size=40))
def test_a_token_never_appears_in_a_problem_line(token: str) -> None:
    field_problem = {"WSRELAY_PORT": "not-a-port"}
    model_problem = {"WSRELAY_SHUTDOWN_DELAY": "50", "WSRELAY_SHUTDOWN_TIMEOUT": "10"}
    for problem in (field_problem, model_problem):
        texts = []
        for secret in ("\x01" * 12, token):  # a token that cannot appear, then the real one
            env = {"WSRELAY_AUTH_TOKENS": json.dumps([secret]), **problem}
            with environment(env), pytest.raises(SettingsProblem) as raised:
                load_settings()
            texts.append(str(raised.value))
        # A token that is part of the message anyway ("WSRELAY_PORT") proves nothing.
        assume(token not in texts[0])
        assert token not in texts[1]


route_paths = st.from_regex(r"\A/[a-z][a-z0-9_-]{0,15}(/[a-z0-9_-]{1,10}){0,2}\Z").filter(
    lambda path: path not in RESERVED_PATHS
)
route_options = st.fixed_dictionaries(
    {},
    optional={
        "max_message_bytes": st.integers(1, 1 << 30),
        "max_connections": st.integers(1, 100_000),
        "ping_interval": st.floats(0, 3600),
        "idle_timeout": st.floats(0.001, 3600),
        "compress": st.booleans(),
        "greeting": st.text(max_size=40),
        "subprotocols": st.lists(st.from_regex(r"\A[a-z][a-z0-9.]{0,10}\Z"), max_size=3),
    },
)
route_lists = st.lists(
    st.tuples(route_paths, route_options), min_size=1, max_size=4, unique_by=lambda r: r[0]
)


@PROPERTIES
@given(route_lists)
def test_valid_routes_round_trip_through_the_environment(
    routes: list[tuple[str, dict[str, Any]]],
) -> None:
    with environment(
        {"WSRELAY_ROUTES": json.dumps([{"path": p, "mode": "echo", **o} for p, o in routes])}
    ):
        loaded = load_settings().routes
    assert [route.path for route in loaded] == [path for path, _ in routes]
    for route, (_, options) in zip(loaded, routes, strict=True):
        assert route.mode == "echo"
        for name, value in options.items():
            assert getattr(route, name) == value, name
