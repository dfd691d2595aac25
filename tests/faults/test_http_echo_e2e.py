"""http_echo against the real process: the request as JSON, credentials redacted, status, delay."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from typing import Any

import pytest

from tests.support import Service

pytestmark = pytest.mark.e2e

ROUTES = [
    {"path": "/echo", "mode": "echo"},
    {"path": "/http", "mode": "http_echo", "query_overrides": True},
    {"path": "/plain", "mode": "http_echo"},
    {"path": "/private", "mode": "http_echo", "auth": "token"},
]


@pytest.fixture(scope="module")
def service() -> Any:
    with Service({"ROUTES": ROUTES, "AUTH_TOKENS": "s3cret-token"}) as running:
        yield running


def request(
    service: Service,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One plain HTTP request (repeated headers allowed): status, headers, body."""
    connection = http.client.HTTPConnection("127.0.0.1", service.port, timeout=20)
    try:
        connection.putrequest(method, path)
        for name, value in headers or []:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def test_any_method_gets_a_json_document_of_the_request(service: Service) -> None:
    status, headers, body = request(
        service,
        "PATCH",
        "/http?a=1&b=two&a=3",
        body="héllo".encode(),
        headers=[("X-Trace", "t1"), ("x-trace", "t2"), ("Content-Type", "text/plain")],
    )
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(body)
    assert doc["method"] == "PATCH"
    assert doc["path"] == "/http"
    assert doc["query"] == {"a": "1, 3", "b": "two"}
    assert doc["headers"]["X-Trace"] == "t1, t2"
    assert doc["headers"]["Content-Type"] == "text/plain"
    assert doc["body"] == "héllo"
    assert "body_encoding" not in doc
    assert doc["remote"] == "127.0.0.1"
    assert doc["hostname"] == socket.gethostname()
    for method in ("GET", "DELETE", "OPTIONS", "POST", "PUT"):
        status, _, body = request(service, method, "/http")
        assert (status, json.loads(body)["method"]) == (200, method)
    status, _, body = request(service, "HEAD", "/http")
    assert (status, body) == (200, b"")


def test_a_body_that_is_not_utf8_comes_back_as_base64(service: Service) -> None:
    raw = bytes(range(256))
    _, _, body = request(service, "POST", "/http", body=raw)
    doc = json.loads(body)
    assert doc["body_encoding"] == "base64"
    assert base64.b64decode(doc["body"]) == raw


def test_credentials_are_redacted_wherever_they_appear(service: Service) -> None:
    _, _, body = request(
        service,
        "POST",
        "/http?token=s3cret-token&q=xs3cret-tokenx",
        body=b'{"password": "s3cret-token"}',
        headers=[
            ("Authorization", "Basic dXNlcjpwYXNz"),
            ("Cookie", "session=abc"),
            ("X-Api-Key", "s3cret-token"),
        ],
    )
    assert b"s3cret-token" not in body
    assert b"dXNlcjpwYXNz" not in body
    assert b"session=abc" not in body
    doc = json.loads(body)
    assert doc["headers"]["Authorization"] == "[redacted]"
    assert doc["headers"]["Cookie"] == "[redacted]"
    assert doc["headers"]["X-Api-Key"] == "[redacted]"
    assert doc["query"] == {"token": "[redacted]", "q": "x[redacted]x"}
    assert doc["body"] == '{"password": "[redacted]"}'


def test_status_and_delay_apply_with_query_overrides(service: Service) -> None:
    status, _, body = request(service, "GET", "/http?status=503")
    assert status == 503
    assert json.loads(body)["query"] == {"status": "503"}
    before = service.metrics().value("wsrelay_faults_injected_total", route="/http", fault="delay")
    started = time.monotonic()
    status, _, _ = request(service, "GET", "/http?delay=250ms")
    assert status == 200
    assert time.monotonic() - started >= 0.25
    after = service.metrics().value("wsrelay_faults_injected_total", route="/http", fault="delay")
    assert after - before == 1


def test_bad_values_are_400_with_one_line(service: Service) -> None:
    status, _, body = request(service, "GET", "/http?status=99")
    assert (status, body) == (400, b"status: 99 is outside 200-599\n")
    status, _, body = request(service, "GET", "/http?delay=31s")
    assert (status, body) == (400, b"delay: 31s is above the maximum 30s\n")


def test_without_query_overrides_status_and_delay_are_the_applications(service: Service) -> None:
    started = time.monotonic()
    status, _, body = request(service, "GET", "/plain?status=500&delay=5s")
    assert status == 200
    assert time.monotonic() - started < 4
    assert json.loads(body)["query"] == {"status": "500", "delay": "5s"}


def test_an_http_echo_route_with_auth_wants_a_token(service: Service) -> None:
    status, _, _ = request(service, "GET", "/private")
    assert status == 401
    status, _, body = request(
        service, "GET", "/private", headers=[("Authorization", "Bearer s3cret-token")]
    )
    assert status == 200
    assert json.loads(body)["headers"]["Authorization"] == "[redacted]"
