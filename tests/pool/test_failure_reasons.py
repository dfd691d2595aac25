"""Why an upstream connect failed, as `wsrelay_upstream_failures_total` labels it."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from service.upstream import failure_reason
from service.upstream_metrics import FAILURE_REASONS

KEY = ConnectionKey("up.example", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (TimeoutError(), "timeout"),
        (
            aiohttp.WSServerHandshakeError(None, (), status=403, message="Forbidden"),  # type: ignore[arg-type]
            "refused",
        ),
        (aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")), "unreachable"),
        (aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError()), "tls"),
        (ssl.SSLError(), "tls"),
        (aiohttp.ServerDisconnectedError(), "unreachable"),
        (ConnectionResetError(), "unreachable"),
    ],
)
def test_connect_errors_map_to_a_bounded_reason(error: BaseException, reason: str) -> None:
    assert failure_reason(error) == reason
    assert reason in FAILURE_REASONS
