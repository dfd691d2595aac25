"""Unit tests: BACKPLANE_URL for a Redis Cluster, its channel names and its SPUBLISH bytes."""

from __future__ import annotations

import pytest
from redis.asyncio.connection import SSLConnection
from redis.connection import Connection
from redis.crc import key_slot

from service import frames
from service.backplane import cluster_url, envelope
from service.backplane.redis_cluster import channel_name
from service.backplane.redis_url import check_url
from service.urlsecrets import redact
from tests.support import clean_env, run_wsrelay

NODE = bytes(range(1, 9))


def test_every_listed_node_is_a_startup_node_and_options_apply_to_all() -> None:
    parsed = cluster_url.parse(
        "rediss-cluster://app:s3cret@r1:7000,10.0.0.2:7001,[::1]:7002?ssl_ca_certs=/ca.pem"
    )
    assert parsed.startup == [("r1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    assert parsed.connection_class is SSLConnection
    assert parsed.options["ssl_ca_certs"] == "/ca.pem"
    assert parsed.options["password"] == "s3cret"
    assert parsed.given == {"username": "app", "password": "s3cret", "ssl_ca_certs": "/ca.pem"}
    assert "host" not in parsed.options


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("redis-cluster://", "'' is not host:port"),
        ("redis-cluster://r1", "'r1' is not host:port"),
        ("redis-cluster://r1:7000,r2", "'r2' is not host:port"),
        ("redis-cluster://r1:7000,,r2:7001", "'' is not host:port"),
        ("redis-cluster://r1:99999", "'r1:99999' is not host:port"),
        ("redis-cluster://r1:7000/3", "database 0 only, not '/3'"),
        ("redis-cluster://:pw@r1:7000?sockett_timeout=2", "sockett_timeout"),
    ],
)
def test_a_bad_cluster_url_is_one_line_naming_the_problem(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=r".") as caught:
        check_url(url)
    message = str(caught.value)
    assert problem in message
    assert "\n" not in message
    assert "pw" not in message.replace("wsrelay", "")


def test_check_config_refuses_a_bad_cluster_url_in_one_line() -> None:
    env = clean_env(WSRELAY_BACKPLANE_URL="redis-cluster://:s3cret@r1:7000,r2")
    result = run_wsrelay("check-config", env=env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "BACKPLANE_URL" in lines[0]
    assert "'r2' is not host:port" in lines[0]
    assert "s3cret" not in result.stderr
    good = clean_env(WSRELAY_BACKPLANE_URL="redis-cluster://r1:7000,r2:7001")
    assert run_wsrelay("check-config", env=good).returncode == 0


def test_redact_hides_the_password_of_a_cluster_url() -> None:
    url = "redis-cluster://app:s3cret@r1:7000,r2:7001"
    assert redact(url) == "redis-cluster://app:***@r1:7000,r2:7001"


def test_the_room_key_is_the_hash_tag_with_its_braces_escaped() -> None:
    name = channel_name("/rooms/{room}#a{b}%")
    assert name == b"wsrelay:{/rooms/%7Broom%7D#a%7Bb%7D%25}"
    # The slot is the whole room key's: rooms of one route land on many slots.
    assert key_slot(name) == key_slot(b"/rooms/%7Broom%7D#a%7Bb%7D%25")
    slots = {key_slot(channel_name(f"/rooms/{{room}}#{i}")) for i in range(100)}
    assert len(slots) > 90


def test_spublish_command_is_the_resp_redis_py_would_send() -> None:
    channel = channel_name("/rooms/{room}#é")
    header = envelope.header(NODE, frames.OP_TEXT)
    payload = "héllo".encode()
    ours = envelope.publish_command(envelope.publish_head(channel, b"SPUBLISH"), header, payload)
    connection = Connection()  # type: ignore[no-untyped-call]
    reference = b"".join(connection.pack_command("SPUBLISH", channel, header + payload))  # type: ignore[no-untyped-call]
    assert ours == reference
