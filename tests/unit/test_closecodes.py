"""Close-code rules: what is answered, what a relay passes on, how codes become labels."""

from __future__ import annotations

import pytest

from service import closecodes
from service.closecodes import CodeLabels


@pytest.mark.parametrize(
    ("received", "reply"),
    [
        (None, 1000),
        (0, 1000),
        (1000, 1000),
        (1001, 1001),
        (4003, 4003),
        (3000, 3000),
        (1005, 1002),
        (1006, 1002),
        (1015, 1002),
        (1004, 1002),
        (999, 1002),
        (1016, 1002),
        (2999, 1002),
        (5000, 1002),
    ],
)
def test_a_peer_close_is_echoed_when_valid_and_answered_1002_when_not(
    received: int | None, reply: int
) -> None:
    assert closecodes.reply_code(received) == reply


@pytest.mark.parametrize(
    ("received", "relayed"),
    [
        (1000, 1000),
        (1001, 1001),
        (1011, 1011),
        (1014, 1014),
        (4003, 4003),
        (None, 1014),
        (1005, 1014),
        (1006, 1014),
        (1015, 1014),
    ],
)
def test_a_relay_never_turns_an_error_into_1000(received: int | None, relayed: int) -> None:
    assert closecodes.relay_code(received) == relayed


def test_labels_are_bounded_whatever_the_peer_sends() -> None:
    label = CodeLabels(extra=[4003])
    assert label(1000) == "1000"
    assert label(1015) == "1015"
    assert label(4003) == "4003"
    assert label(4004) == "4xxx"
    assert label(3999) == "3xxx"
    assert label(None) == "1006"
    labels = {label(code) for code in range(0, 70000)}
    assert len(labels) == 16 + 1 + 3  # 1000-1015, 4003, 3xxx, 4xxx, other


@pytest.mark.parametrize(
    ("client_code", "to_upstream"),
    [
        (1000, 1000),
        (1001, 1001),
        (1008, 1008),
        (1009, 1009),
        (4003, 4003),
        (1005, 1000),
        (1006, 1001),
        (1015, 1001),
        (None, 1001),
    ],
)
def test_a_proxy_passes_its_clients_close_upstream_and_never_a_local_only_code(
    client_code: int | None, to_upstream: int
) -> None:
    assert closecodes.upstream_close_code(client_code) == to_upstream
    assert closecodes.is_sendable(to_upstream)
