"""`wsrelay healthcheck`: the target it derives, and that it stays cheap (the image runs it often).

Against a real process (http, https, a prefix, a dead port) it is run in tests/e2e/test_drain_e2e.py
and tests/security/test_security.py.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trustme

from service import cli
from service.healthcheck import Target, target, target_from_environment
from service.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.upper().startswith("WSRELAY_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env unless a test writes one


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("tls")
    issued = trustme.CA().issue_cert("127.0.0.1")
    issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    return {
        "WSRELAY_TLS_CERT_FILE": str(folder / "cert.pem"),
        "WSRELAY_TLS_KEY_FILE": str(folder / "key.pem"),
    }


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"WSRELAY_PORT": "9000", "WSRELAY_PATH_PREFIX": "/relay"},
        {"WSRELAY_HOST": "::"},
        {"WSRELAY_HOST": "10.1.2.3", "WSRELAY_PORT": "8443"},
        {"WSRELAY_HOST": "localhost"},
        {"wsrelay_port": "9001", "Wsrelay_Path_Prefix": "/lower"},  # names are not case-sensitive
        {"WSRELAY_TLS_CERT_FILE": ""},
        {"TLS": "the pair"},  # stands for the trustme certificate and key files
    ],
)
def test_the_environment_alone_gives_what_the_settings_give(
    env: dict[str, str], tls_pair: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if "TLS" in env:
        env = tls_pair
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = load_settings()
    tls = bool(settings.tls_cert_file and settings.tls_key_file)
    expected = target(settings.host, settings.port, settings.path_prefix, tls)
    assert target_from_environment(os.environ, tmp_path) == expected


def test_wildcards_are_probed_on_loopback_and_tls_means_https() -> None:
    assert target("0.0.0.0", 8080, "", False) == Target("http", "127.0.0.1", 8080, "")
    assert target("", 8080, "", False).host == "127.0.0.1"
    assert target("::", 8080, "/p", True).url("/healthz") == "https://[::1]:8080/p/healthz"
    assert target("10.0.0.7", 81, "", False).url("/readyz") == "http://10.0.0.7:81/readyz"


def test_other_settings_sources_or_an_unreadable_port_load_the_full_settings(
    tmp_path: Path,
) -> None:
    assert target_from_environment({"WSRELAY_CONFIG": "/etc/wsrelay.yaml"}, tmp_path) is None
    assert target_from_environment({"WSRELAY_PORT": "eighty"}, tmp_path) is None
    (tmp_path / ".env").write_text("WSRELAY_PORT=9000\n")
    assert target_from_environment({}, tmp_path) is None


def test_healthcheck_imports_no_heavy_module() -> None:
    """It runs every 10 s in the image: no pydantic, aiohttp, rich or multiprocessing."""
    code = (
        "import json, sys\n"
        "from service.cli import main\n"
        "try:\n"
        "    main(['healthcheck', '--timeout', '0.5'])\n"
        "except SystemExit as done:\n"
        "    print(done.code)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("WSRELAY_")}
    env["WSRELAY_PORT"] = "1"  # nothing listens: the check fails, which is fine here
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    code_line, modules_line = result.stdout.splitlines()[-2:]
    assert code_line == "1", result.stderr
    loaded = {name.split(".")[0] for name in json.loads(modules_line)}
    heavy = {"pydantic", "pydantic_settings", "aiohttp", "rich", "multiprocessing", "yaml"}
    assert not heavy & loaded, heavy & loaded
    assert "service.settings" not in modules_line


def test_subcommand_help_lines_are_their_modules_docstrings() -> None:
    for module_name, summary in cli.SUBCOMMANDS.values():
        module = importlib.import_module(module_name)
        assert summary == (module.__doc__ or "").strip().splitlines()[0]


def test_every_subcommand_is_listed_and_configured_when_chosen(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.parser("").parse_args(["--help"])
    listing = capsys.readouterr().out
    for name in ("serve", "check-config", *cli.SUBCOMMANDS):
        assert name in listing
    args = cli.parser("healthcheck").parse_args(["healthcheck", "--ready"])
    assert args.ready is True
    assert args.run.__module__ == "service.healthcheck"
    assert cli._command(["--version"]) == ""
    assert cli._command(["bench", "ws://x/echo", "--size", "1"]) == "bench"
