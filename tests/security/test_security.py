"""Security hardening, end to end against `wsrelay serve`: tokens in a subprotocol, request size
limits, TLS serving, verified wss:// upstreams, the handshake rate limit and descriptor
exhaustion. SECURITY.md states the threat model these belong to.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import trustme
import websockets
from aiohttp import web
from websockets.exceptions import ConnectionClosed, InvalidStatus

from service.tls import upstream_context
from service.websocket import WebSocket
from tests.churn.observe import check_config, tracebacks
from tests.fuzz.rawws import close_frame, exchange, handshake
from tests.support import Service, free_port, http_get, run_wsrelay

pytestmark = pytest.mark.e2e

TOKEN = "t0ken-for-browsers-2f9c4e"
ECHO = {"path": "/echo", "mode": "echo"}


async def echo_once(url: str, **connect: Any) -> str:
    async with websockets.connect(url, open_timeout=10, **connect) as ws:
        await ws.send("ping?")
        reply = await asyncio.wait_for(ws.recv(), 10)
        assert isinstance(reply, str)
        return reply


# -- a token in the subprotocol list ---------------------------------------------------------------
@pytest.fixture(scope="module")
def private() -> Iterator[Service]:
    route = {"path": "/private", "mode": "echo", "auth": "token", "subprotocols": ["wsrelay"]}
    with Service({"ROUTES": [route], "AUTH_TOKENS": [TOKEN]}) as service:
        yield service


def test_a_browser_token_in_the_subprotocol_list_is_accepted(private: Service) -> None:
    async def run() -> str | None:
        protocols = ["wsrelay", f"bearer.{TOKEN}"]
        async with websockets.connect(private.ws_url("/private"), subprotocols=protocols) as ws:  # type: ignore[arg-type]
            await ws.send("hello")
            assert await ws.recv() == "hello"
            return ws.subprotocol

    # The server answers with the other protocol: never the one that carries the token.
    assert asyncio.run(run()) == "wsrelay"
    assert TOKEN not in private.stderr


def test_a_wrong_token_in_the_subprotocol_list_gets_401(private: Service) -> None:
    protocols = ["wsrelay", "bearer.not-the-token"]
    with pytest.raises(InvalidStatus) as refused:
        asyncio.run(echo_once(private.ws_url("/private"), subprotocols=protocols))
    assert refused.value.response.status_code == 401
    assert "not-the-token" not in private.stderr


def test_the_other_token_sources_still_work(private: Service) -> None:
    url = private.ws_url("/private")
    header = {"additional_headers": {"Authorization": f"Bearer {TOKEN}"}}
    assert asyncio.run(echo_once(url, subprotocols=["wsrelay"], **header)) == "ping?"
    assert asyncio.run(echo_once(f"{url}?token={TOKEN}", subprotocols=["wsrelay"])) == "ping?"


# -- request line and header limits --------------------------------------------------------------
@pytest.fixture(scope="module")
def strict() -> Iterator[Service]:
    limits = {"MAX_REQUEST_LINE_BYTES": "1024", "MAX_HEADER_BYTES": "1024", "MAX_HEADERS": "16"}
    with Service({"ROUTES": [ECHO], **limits}) as service:
        yield service


def _upgrade(service: Service, path: str = "/echo", **headers: str) -> int:
    return exchange(service.port, handshake(path, service.port, headers), close_frame()).status


def test_headers_within_the_limits_pass(strict: Service) -> None:
    assert _upgrade(strict, "/echo?" + "a" * 900, **{"X-Pad": "b" * 900}) == 101


def test_an_oversized_request_line_or_header_gets_400_without_a_traceback(
    strict: Service,
) -> None:
    assert _upgrade(strict, "/echo?" + "a" * 1100) == 400
    assert _upgrade(strict, **{"X-Pad": "b" * 1100}) == 400
    assert _upgrade(strict, **{f"X-Many-{n}": "x" for n in range(20)}) == 400
    assert not tracebacks(strict.stderr), strict.stderr
    assert "bad request refused: LineTooLong" in strict.stderr


def test_the_default_limits_are_aiohttps(private: Service) -> None:
    # The module's other service keeps the defaults: an 8 KiB header passes, 9 KiB does not.
    assert _upgrade(private, "/private?token=" + TOKEN, **{"X-Pad": "b" * 8000}) == 101
    assert _upgrade(private, "/private?token=" + TOKEN, **{"X-Pad": "b" * 9000}) == 400


def _wait_dropped(port: int, sent: bytes, limit: float = 30.0) -> None:
    """Send `sent` (maybe nothing), then wait (at most `limit`) for the server to hang up."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as sock:
        sock.sendall(sent)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1024) == b"", "the server answered a request that was never sent"


def test_a_client_that_never_finishes_its_handshake_is_dropped() -> None:
    """Slowloris: silence, or half a request, holds a descriptor only for HANDSHAKE_TIMEOUT."""
    with Service({"ROUTES": [ECHO], "HANDSHAKE_TIMEOUT": "1"}) as service:
        half = handshake("/echo", service.port)[:40]
        # Bounded by the socket timeout (30 s): a server that never hangs up fails the test.
        _wait_dropped(service.port, b"")
        _wait_dropped(service.port, half)

        async def idle_websocket_survives() -> str:
            async with websockets.connect(service.ws_url("/echo"), ping_interval=None) as ws:
                await asyncio.sleep(2.5)  # well past HANDSHAKE_TIMEOUT, once upgraded
                await ws.send("still open")
                return str(await ws.recv())

        assert asyncio.run(idle_websocket_survives()) == "still open"


# -- TLS -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_files(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    paths = {"cert": folder / "cert.pem", "key": folder / "key.pem", "ca": folder / "ca.pem"}
    cert.cert_chain_pems[0].write_to_path(str(paths["cert"]))
    cert.private_key_pem.write_to_path(str(paths["key"]))
    ca.cert_pem.write_to_path(str(paths["ca"]))
    return paths


def _client_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture(scope="module")
def tls_echo(tls_files: dict[str, Path]) -> Iterator[Service]:
    """wsrelay serving wss:// with the test CA's certificate."""
    settings = {
        "ROUTES": [ECHO],
        "TLS_CERT_FILE": str(tls_files["cert"]),
        "TLS_KEY_FILE": str(tls_files["key"]),
    }
    service = _start_tls(settings, tls_files["ca"])
    try:
        yield service
    finally:
        service.stop()


def test_wss_is_served_with_the_configured_certificate(
    tls_echo: Service, tls_files: dict[str, Path]
) -> None:
    url = f"wss://127.0.0.1:{tls_echo.port}/echo"
    assert asyncio.run(echo_once(url, ssl=_client_context(tls_files["ca"]))) == "ping?"
    assert url in tls_echo.stdout
    # Plain ws:// to a TLS listener does not get a WebSocket.
    with pytest.raises((InvalidStatus, OSError, websockets.InvalidMessage)):
        asyncio.run(echo_once(f"ws://127.0.0.1:{tls_echo.port}/echo"))


def test_the_healthcheck_probes_https_when_wsrelay_serves_tls(tls_echo: Service) -> None:
    """`wsrelay healthcheck` (the image's HEALTHCHECK) follows TLS_CERT_FILE to https."""
    result = run_wsrelay("healthcheck", env=tls_echo.env)
    assert result.returncode == 0, result.stderr
    assert f"https://127.0.0.1:{tls_echo.port}/healthz: 200" in result.stdout
    # A plain http probe, what the image's check used to be, fails against this listener.
    plain = run_wsrelay("healthcheck", env={**tls_echo.env, "WSRELAY_TLS_CERT_FILE": ""})
    assert plain.returncode == 1
    assert f"http://127.0.0.1:{tls_echo.port}/healthz" in plain.stderr


def test_bad_tls_settings_are_named_one_line_each(
    tls_files: dict[str, Path], tmp_path: Path
) -> None:
    only_cert = check_config({"TLS_CERT_FILE": str(tls_files["cert"])})
    assert only_cert.returncode == 1
    assert "set both or neither" in only_cert.stdout + only_cert.stderr
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    bad_pair = check_config({"TLS_CERT_FILE": str(garbage), "TLS_KEY_FILE": str(garbage)})
    assert bad_pair.returncode == 1
    assert "TLS_CERT_FILE/TLS_KEY_FILE: cannot load" in bad_pair.stdout + bad_pair.stderr
    bad_ca = check_config({"UPSTREAM_CA_FILE": str(garbage)})
    assert bad_ca.returncode == 1
    assert "UPSTREAM_CA_FILE" in bad_ca.stdout + bad_ca.stderr
    assert "Traceback" not in bad_ca.stderr + bad_pair.stderr + only_cert.stderr


async def _wss_upstream_connects(
    tls_files: dict[str, Path], context: ssl.SSLContext, host: str
) -> str:
    """A TLS echo server standing in for a wss:// upstream; the client is wsrelay's own."""

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/echo", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(str(tls_files["cert"]), str(tls_files["key"]))
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context).start()
    try:
        connector = aiohttp.TCPConnector(ssl=context)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            WebSocket.connect(f"wss://{host}:{port}/echo", session=session) as ws,
        ):
            ws.send("through tls")
            return str(await asyncio.wait_for(anext(aiter(ws)), 10))
    finally:
        await runner.cleanup()


def test_wss_upstreams_verify_against_the_custom_ca(tls_files: dict[str, Path]) -> None:
    verified = upstream_context(str(tls_files["ca"]))
    assert asyncio.run(_wss_upstream_connects(tls_files, verified, "127.0.0.1")) == "through tls"
    # Without the CA the same certificate is refused: verification is on by default.
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        asyncio.run(_wss_upstream_connects(tls_files, upstream_context(None), "127.0.0.1"))
    assert verified.check_hostname
    assert verified.verify_mode == ssl.CERT_REQUIRED


def _start_tls(settings: dict[str, Any], ca_file: Path) -> Service:
    """A wsrelay serving wss:// (Service waits on plain HTTP, so this waits on TLS itself)."""
    service = Service(settings).start(wait=False)
    url = f"wss://127.0.0.1:{service.port}/echo"
    deadline = time.monotonic() + 20
    while True:
        try:
            asyncio.run(echo_once(url, ssl=_client_context(ca_file)))
            return service
        except OSError:
            assert service.process is not None
            assert service.process.poll() is None, service.stderr
            assert time.monotonic() < deadline, service.stderr
            time.sleep(0.1)


def test_a_proxy_route_reaches_a_wss_upstream_signed_by_the_custom_ca(
    tls_echo: Service, tls_files: dict[str, Path]
) -> None:
    url = f"wss://127.0.0.1:{tls_echo.port}/echo"
    relay_settings = {
        "ROUTES": [{"path": "/relay", "mode": "proxy", "upstream": "secure"}],
        "UPSTREAMS": {"secure": {"url": url, "connect_timeout": 3}},
        "UPSTREAM_CA_FILE": str(tls_files["ca"]),
    }
    with Service(relay_settings) as relay:
        assert asyncio.run(echo_once(relay.ws_url("/relay"))) == "ping?"
    # Without the CA the upstream's certificate is refused: the client gets 1014 (bad gateway).
    del relay_settings["UPSTREAM_CA_FILE"]
    with Service(relay_settings) as relay:
        with pytest.raises(ConnectionClosed) as closed:
            asyncio.run(echo_once(relay.ws_url("/relay")))
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1014
        assert relay.metrics().total("wsrelay_upstream_failures_total", reason="tls") >= 1


# -- handshake rate limit ------------------------------------------------------------------------
def test_handshakes_over_the_rate_get_429_and_are_counted() -> None:
    settings = {"ROUTES": [ECHO], "HANDSHAKE_RATE": "0.5", "HANDSHAKE_BURST": "3"}
    with Service(settings) as service:
        url = service.ws_url("/echo")
        for _ in range(3):
            assert asyncio.run(echo_once(url)) == "ping?"
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(echo_once(url))
        response = refused.value.response
        assert response.status_code == 429
        assert int(response.headers["Retry-After"]) >= 1
        # Probes and scrapes are not handshakes: never limited.
        assert all(http_get(service.url("/healthz"))[0] == 200 for _ in range(10))
        rejected = service.metrics().value(
            "wsrelay_handshakes_rejected_total", route="/echo", reason="rate_limit"
        )
        assert rejected == 1


# -- file-descriptor exhaustion --------------------------------------------------------------------
async def _fill(service: Service, attempts: int) -> tuple[int, dict[int, int], str, str]:
    """Hold connections until refused; then check the first still echoes and a new one works
    once the others are gone. Returns (held, refusals by status, first echo, fresh echo)."""
    first = await websockets.connect(service.ws_url("/echo"), ping_interval=None)
    held = []
    refusals: dict[int, int] = {}
    for _ in range(attempts):
        try:
            held.append(await websockets.connect(service.ws_url("/echo"), open_timeout=5))
        except InvalidStatus as error:
            status = error.response.status_code
            refusals[status] = refusals.get(status, 0) + 1
    await first.send("still here")
    still = str(await asyncio.wait_for(first.recv(), 10))
    for ws in held:
        await ws.close()
    await first.close()
    fresh = ""
    for _ in range(50):  # the server notices the closes within moments
        try:
            fresh = await echo_once(service.ws_url("/echo"))
            break
        except InvalidStatus:
            await asyncio.sleep(0.1)
    return len(held), refusals, still, fresh


def test_descriptor_exhaustion_refuses_new_handshakes_with_503_and_keeps_the_rest() -> None:
    with Service({"ROUTES": [ECHO]}) as service:
        assert service.process is not None
        limit = 96  # like `ulimit -n 96`, applied to the running process
        resource.prlimit(service.process.pid, resource.RLIMIT_NOFILE, (limit, limit))
        held, refusals, still, fresh = asyncio.run(_fill(service, attempts=limit))
        assert refusals, "no handshake was refused: the limit was never reached"
        assert set(refusals) == {503}, refusals
        assert 0 < held < limit
        assert still == "still here"
        assert fresh == "ping?"
        assert service.process.poll() is None
        assert http_get(service.url("/healthz"))[0] == 200
        rejected = service.metrics().value(
            "wsrelay_handshakes_rejected_total", route="/echo", reason="capacity"
        )
        assert rejected == sum(refusals.values())
        assert not tracebacks(service.stderr), service.stderr
