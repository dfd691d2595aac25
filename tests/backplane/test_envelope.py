"""Unit tests: the envelope replicas exchange through Redis, and BACKPLANE_URL."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection

from service import frames
from service.backplane import envelope
from service.backplane.redis_url import check_url
from service.urlsecrets import redact

NODE = bytes(range(1, 9))


@given(
    node=st.binary(min_size=8, max_size=8),
    opcode=st.sampled_from([frames.OP_TEXT, frames.OP_BINARY]),
    payload=st.binary(max_size=4096),
)
def test_round_trip_keeps_node_opcode_and_bytes(node: bytes, opcode: int, payload: bytes) -> None:
    data = envelope.encode(node, opcode, payload)
    assert envelope.decode(data) == (node, opcode, payload)


def test_layout_is_one_header_byte_then_node_then_raw_payload() -> None:
    payload = "héllo ✓".encode()
    data = envelope.encode(NODE, frames.OP_TEXT, payload)
    assert data == b"\x11" + NODE + payload
    assert len(envelope.encode(NODE, frames.OP_BINARY, b"\xff" * 1000)) == 1000 + 9  # no base64


def test_empty_payloads_travel_too() -> None:
    assert envelope.decode(envelope.encode(NODE, frames.OP_BINARY, b"")) == (
        NODE,
        frames.OP_BINARY,
        b"",
    )


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x11" + NODE[:7],  # shorter than the header
        b"\x21" + NODE + b"x",  # a future version
        b"\x19" + NODE + b"x",  # ping is not a room message
        b"\x18" + NODE + b"x",  # nor close
        b"hello world",  # someone else's publisher on our channel
    ],
)
def test_what_is_not_an_envelope_is_refused(data: bytes) -> None:
    assert envelope.decode(data) is None


@pytest.mark.parametrize(("node", "opcode"), [(NODE, frames.OP_PING), (NODE[:4], frames.OP_TEXT)])
def test_encode_refuses_control_frames_and_bad_node_ids(node: bytes, opcode: int) -> None:
    with pytest.raises(ValueError, match=r"."):
        envelope.encode(node, opcode, b"x")


def test_node_ids_differ_between_processes() -> None:
    ids = {envelope.new_node_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(node) == envelope.NODE_ID_BYTES for node in ids)


def test_a_misspelt_url_option_is_refused_up_front_without_the_password() -> None:
    with pytest.raises(ValueError, match=r"redis://u:\*\*\*@h:1/0\?sockett_timeout=2") as caught:
        check_url("redis://u:pa55word@h:1/0?sockett_timeout=2")
    assert "pa55word" not in str(caught.value)
    check_url("rediss://h:6380/2?ssl_ca_certs=/etc/ca.pem&socket_timeout=2")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://app:s3cret@[::1]/1", "rediss://app:***@[::1]/1"),
        ("redis://redis:6379/0", "redis://redis:6379/0"),
    ],
)
def test_redact_hides_only_the_password(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("payload", [b"", b"\x00\r\n\xff", "✓".encode() * 3000])
def test_publish_command_is_the_resp_redis_py_would_send(payload: bytes) -> None:
    channel = "wsrelay:0:/rooms/{room}#é".encode()
    header = envelope.header(NODE, frames.OP_BINARY)
    ours = envelope.publish_command(envelope.publish_head(channel), header, payload)
    # redis-py leaves Connection unannotated
    connection = Connection()  # type: ignore[no-untyped-call]
    reference = b"".join(connection.pack_command("PUBLISH", channel, header + payload))  # type: ignore[no-untyped-call]
    assert ours == reference
