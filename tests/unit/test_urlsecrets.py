"""The backplane URL's passwords, masked wherever wsrelay shows the URL (one `redact`), and
handed to the log filter as written and as redis-py decodes them (`passwords`)."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import parse_url

from service.settings import SettingsProblem, load_settings
from service.urlsecrets import passwords, redact


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://app:pa:ss@w0rd@redis:6380/1?ssl_ca_certs=/ca.pem",
         "rediss://app:***@redis:6380/1?ssl_ca_certs=/ca.pem"),
        ("redis-cluster://app:s3cret@r1:7000,r2:7001", "redis-cluster://app:***@r1:7000,r2:7001"),
        ("redis://redis:6379/0?socket_timeout=2&password=q-pa55&db=1",
         "redis://redis:6379/0?socket_timeout=2&password=***&db=1"),
        ("redis://redis/0?pass%77ord=enc0ded", "redis://redis/0?pass%77ord=***"),
        ("redis://u:one@redis/0?password=two", "redis://u:***@redis/0?password=***"),
        ("redis://u:@redis/0", "redis://u:***@redis/0"),
    ],
)  # fmt: skip
def test_redact_masks_the_userinfo_password_and_a_password_option(url: str, shown: str) -> None:
    assert redact(url) == shown
    # What was masked is what redis-py would authenticate with.
    single = url.replace("redis-cluster://", "redis://").replace(",r2:7001", "")
    password = parse_url(single).get("password")
    assert not password or password not in redact(url)


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "redis://redis:6379/0",
        "redis://user@redis:6379/0",
        "rediss://redis:6380/0?ssl_ca_certs=/ca.pem&socket_timeout=2",
        "redis-cluster://r1:7000,r2:7001",
        "redis://redis/0?passwords=not-an-option",
    ],
)
def test_a_url_without_a_password_is_shown_as_given(url: str) -> None:
    assert redact(url) == url
    assert passwords(url) == []


def test_passwords_are_listed_as_written_and_as_redis_py_decodes_them() -> None:
    url = "redis://app:p%40ss@redis/0?password=a+b%21"
    assert passwords(url) == ["p%40ss", "p@ss", "a+b%21", "a b!"]
    # How redis-py reads each: the userinfo's percent-decoded, the query's as a form value.
    assert parse_url("redis://app:p%40ss@redis/0")["password"] == "p@ss"
    assert parse_url("redis://redis/0?password=a+b%21")["password"] == "a b!"


def test_a_bad_url_is_refused_without_its_query_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSRELAY_BACKPLANE_URL", "redis://r:6379/0?password=hunter2&bogus_opt=1")
    with pytest.raises(SettingsProblem) as raised:
        load_settings()
    assert len(raised.value.lines) == 1
    assert "bogus_opt" in raised.value.lines[0]
    assert "password=***" in raised.value.lines[0]
    assert "hunter2" not in raised.value.lines[0]


def test_a_password_option_in_another_case_is_refused_masked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """redis-py reads only `password=`; a `Password=` is refused, and the refusal shows the
    URL: with the value masked all the same."""
    monkeypatch.setenv("WSRELAY_BACKPLANE_URL", "redis://r:6379/0?Password=s3cret")
    with pytest.raises(SettingsProblem) as raised:
        load_settings()
    assert "Password=***" in raised.value.lines[0]
    assert "s3cret" not in raised.value.lines[0]
    assert passwords("redis://r:6379/0?Password=s3cret") == ["s3cret"]
