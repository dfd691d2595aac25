"""Settings: sources and their order, and one clear line per problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.settings import SettingsProblem, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("WSRELAY_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env unless a test writes one


def problems_of(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for key, value in env.items():
        monkeypatch.setenv(f"WSRELAY_{key}", value)
    with pytest.raises(SettingsProblem) as raised:
        load_settings()
    return raised.value.lines


def test_defaults_serve_echo_rooms_and_the_routes_for_testing_clients() -> None:
    settings = load_settings()
    assert [(route.path, route.mode, route.query_overrides) for route in settings.routes] == [
        ("/echo", "echo", False),
        ("/rooms/{room}", "broadcast", False),
        ("/faults", "echo", True),
        ("/stream", "stream", True),
        ("/http", "http_echo", True),
    ]
    assert (settings.host, settings.port, settings.backplane_url) == ("0.0.0.0", 8080, "memory://")
    assert settings.shutdown_close_code == 1001


def test_lists_come_as_json_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSRELAY_AUTH_TOKENS", "a, b")
    monkeypatch.setenv("WSRELAY_ALLOWED_ORIGINS", '["https://x.example"]')
    monkeypatch.setenv("WSRELAY_CLOSE_CODE_LABELS", "4001,4002")
    settings = load_settings()
    assert [token.get_secret_value() for token in settings.auth_tokens] == ["a", "b"]
    assert settings.allowed_origins == ["https://x.example"]
    assert settings.close_code_labels == [4001, 4002]


def test_file_then_dotenv_then_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "wsrelay.yaml"
    config.write_text(
        "port: 7000\nping_interval: 5\nmax_connections: 10\nroutes:\n  - {path: /a, mode: echo}\n"
    )
    (tmp_path / ".env").write_text("WSRELAY_PING_INTERVAL=6\nWSRELAY_MAX_CONNECTIONS=11\n")
    monkeypatch.setenv("WSRELAY_CONFIG", str(config))
    monkeypatch.setenv("WSRELAY_MAX_CONNECTIONS", "12")
    settings = load_settings()
    assert settings.port == 7000  # file
    assert settings.ping_interval == 6  # .env over file
    assert settings.max_connections == 12  # environment over both
    assert [route.path for route in settings.routes] == ["/a"]


def test_a_json_config_file_works_too(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "wsrelay.json"
    config.write_text(
        json.dumps(
            {
                "upstreams": {"up": {"url": "ws://127.0.0.1:9/x"}},
                "routes": [{"path": "/p", "mode": "proxy", "upstream": "up"}],
            }
        )
    )
    monkeypatch.setenv("WSRELAY_CONFIG", str(config))
    assert load_settings().upstreams["up"].max_connections == 100


def test_a_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems_of(monkeypatch, CONFIG="/nonexistent.yaml") == [
        "WSRELAY_CONFIG: no such file '/nonexistent.yaml'"
    ]


def test_every_problem_is_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = problems_of(
        monkeypatch,
        PORT="70000",
        PING_TIMEOUT="0",
        LOG_FORMAT="xml",
        BACKPLANE_URL="kafka://x",
        PATH_PREFIX="api/",
        CLOSE_CODE_LABELS="1000",
    )
    names = [line.split(":")[0] for line in lines]
    assert names == [
        "WSRELAY_PORT",
        "WSRELAY_BACKPLANE_URL",
        "WSRELAY_PING_TIMEOUT",
        "WSRELAY_PATH_PREFIX",
        "WSRELAY_CLOSE_CODE_LABELS",
        "WSRELAY_LOG_FORMAT",
    ]
    assert all("got" in line for line in lines)


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        ('[{"path": "/x", "mode": "teleport"}]', "WSRELAY_ROUTES[0].mode"),
        ('[{"path": "x", "mode": "echo"}]', "WSRELAY_ROUTES[0].path"),
        ('[{"path": "/x/{id}", "mode": "broadcast"}]', "WSRELAY_ROUTES[0].path"),
        ('[{"path": "/metrics", "mode": "echo"}]', "WSRELAY_ROUTES[0].path"),
        ('[{"path": "/x/{room}", "mode": "echo"}]', "WSRELAY_ROUTES[0]"),
        ('[{"path": "/x", "mode": "echo", "echo_to_sender": true}]', "WSRELAY_ROUTES[0]"),
        ('[{"path": "/x", "mode": "feed"}]', "WSRELAY_ROUTES[0]"),
        ('[{"path": "/x", "mode": "echo", "colour": "red"}]', "WSRELAY_ROUTES[0].colour"),
        (
            '[{"path": "/x", "mode": "echo", "max_connections": 0}]',
            "WSRELAY_ROUTES[0].max_connections",
        ),
        (
            '[{"path": "/x", "mode": "echo", "allowed_origins": ["evil"]}]',
            "WSRELAY_ROUTES[0].allowed_origins",
        ),
        ('[{"path": "/x", "mode": "echo"}, {"path": "/x", "mode": "echo"}]', "WSRELAY_ROUTES"),
        ("[]", "WSRELAY_ROUTES"),
        ("[{", "WSRELAY_ROUTES"),
    ],
)
def test_bad_routes_are_named(monkeypatch: pytest.MonkeyPatch, routes: str, expected: str) -> None:
    lines = problems_of(monkeypatch, ROUTES=routes)
    assert len(lines) == 1
    assert lines[0].startswith(expected + ":"), lines


def test_cross_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = problems_of(
        monkeypatch,
        ROUTES='[{"path": "/p", "mode": "proxy", "upstream": "nope"},'
        ' {"path": "/s", "mode": "echo", "auth": "token"}]',
        SHUTDOWN_SPREAD="10",
        SHUTDOWN_TIMEOUT="10",
    )
    assert len(lines) == 1
    assert "upstream 'nope'" in lines[0]
    assert "AUTH_TOKENS is empty" in lines[0]
    assert "SHUTDOWN_SPREAD must be below SHUTDOWN_TIMEOUT" in lines[0]


def test_shutdown_delay_and_spread_are_each_checked_against_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = problems_of(monkeypatch, SHUTDOWN_DELAY="10", SHUTDOWN_SPREAD="12")
    assert lines == [
        "settings: SHUTDOWN_SPREAD must be below SHUTDOWN_TIMEOUT; "
        "SHUTDOWN_DELAY must be below SHUTDOWN_TIMEOUT"
    ]


def test_delay_plus_spread_past_the_timeout_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    """SPEC bounds each by the timeout; together the drain cuts the spread (service/drain.py)."""
    for key, value in {"DELAY": "5", "SPREAD": "8", "TIMEOUT": "10"}.items():
        monkeypatch.setenv(f"WSRELAY_SHUTDOWN_{key}", value)
    settings = load_settings()
    assert (settings.shutdown_delay, settings.shutdown_spread) == (5, 8)


def test_bad_upstreams_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = problems_of(
        monkeypatch,
        UPSTREAMS=json.dumps(
            {
                "a": {"url": "http://x"},
                "b": {"url": "ws://x", "min_idle": 5, "max_connections": 2},
            }
        ),
    )
    assert [line.split(":")[0] for line in lines] == [
        "WSRELAY_UPSTREAMS.a.url",
        "WSRELAY_UPSTREAMS.b",
    ]


def test_unknown_variables_are_reported_not_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems_of(monkeypatch, PROT="8080") == ["WSRELAY_PROT: unknown setting"]


def test_a_secret_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = problems_of(monkeypatch, AUTH_TOKENS='["hunter2", 5]', PORT="x")
    assert lines
    assert not any("hunter2" in line for line in lines)


def test_a_bad_backplane_url_is_named_without_its_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lines = problems_of(monkeypatch, BACKPLANE_URL="redis://:hunter2@127.0.0.1:1/0?bogus_opt=1")
    assert len(lines) == 1
    assert lines[0].startswith("WSRELAY_BACKPLANE_URL:")
    assert "bogus_opt" in lines[0]
    assert "hunter2" not in lines[0]


def test_metrics_are_on_by_default_and_switched_off_by_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert load_settings().metrics_enabled is True
    monkeypatch.setenv("WSRELAY_METRICS_ENABLED", "false")
    assert load_settings().metrics_enabled is False


def test_a_bad_metrics_switch_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = problems_of(monkeypatch, METRICS_ENABLED="sometimes")
    assert len(lines) == 1
    assert lines[0].startswith("WSRELAY_METRICS_ENABLED: ")
    assert "boolean" in lines[0]
    assert "'sometimes'" in lines[0]
