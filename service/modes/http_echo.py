"""http_echo: any HTTP method on the path answers with a JSON document of the request.

For testing ingresses and load balancers with plain HTTP next to the WebSocket routes: what
arrived (method, path, query, headers, body), from where (`remote`) and which replica answered
(`hostname`). Credentials never come back: `Authorization`, `Proxy-Authorization` and `Cookie`
headers, and the configured tokens wherever they appear, read `[redacted]`. With
`query_overrides`, `status` picks the answer's status and `delay` holds it (bounded like the
faults; a bad value is 400 with one line).
"""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import Iterable

import orjson
from aiohttp import hdrs, web

from ..faults import FaultCounter
from ..faults.params import FaultError, HttpEcho, http_echo_from_query
from ..middlewares import Handler

REDACTED = "[redacted]"
#: Headers whose whole value is a credential.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


class Redactor:
    """Replaces every configured token in text and bytes with `[redacted]`."""

    __slots__ = ("_binary", "_texts")

    def __init__(self, secrets: Iterable[str]) -> None:
        # Longest first, so a token that contains another is replaced whole.
        self._texts = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._binary = [(s.encode(), REDACTED.encode()) for s in self._texts]

    def text(self, value: str) -> str:
        for secret in self._texts:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def bytes(self, value: bytes) -> bytes:
        for secret, replacement in self._binary:
            if secret in value:
                value = value.replace(secret, replacement)
        return value


def joined(pairs: Iterable[tuple[str, str]], redact: Redactor) -> dict[str, str]:
    """name -> value, repeated names joined with ", " (the first spelling of a name is kept)."""
    values: dict[str, list[str]] = {}
    spelled: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        spelled.setdefault(key, str(name))  # aiohttp header names are istr
        values.setdefault(key, []).append(value)
    return {redact.text(spelled[key]): redact.text(", ".join(v)) for key, v in values.items()}


def document(
    request: web.Request, body: bytes, redact: Redactor, hostname: str
) -> dict[str, object]:
    """The JSON document of `request` (SPEC.md's http_echo)."""
    headers = joined(
        (
            (name, REDACTED if name.lower() in CREDENTIAL_HEADERS else value)
            for name, value in request.headers.items()
        ),
        redact,
    )
    doc: dict[str, object] = {
        "method": request.method,
        "path": redact.text(request.path),
        "query": joined(request.query.items(), redact),
        "headers": headers,
    }
    body = redact.bytes(body)
    try:
        doc["body"] = body.decode()
    except UnicodeDecodeError:
        doc["body"] = base64.b64encode(body).decode()
        doc["body_encoding"] = "base64"
    doc["remote"] = request.remote
    doc["hostname"] = hostname
    return doc


def http_echo(secrets: Iterable[str], query_overrides: bool, counter: FaultCounter) -> Handler:
    """The aiohttp handler of an http_echo route (every method)."""
    redact = Redactor(secrets)
    hostname = socket.gethostname()

    async def handler(request: web.Request) -> web.StreamResponse:
        asked = HttpEcho()
        if query_overrides:
            try:
                asked = http_echo_from_query(request.query)
            except FaultError as error:
                return web.Response(status=400, text=f"{error}\n")
        body = await request.read()  # bounded by aiohttp's client_max_size (413 beyond)
        if asked.delay > 0:
            counter.fault_injected("delay")
            await asyncio.sleep(asked.delay)
        return web.Response(
            status=asked.status,
            body=orjson.dumps(document(request, body, redact, hostname)),
            content_type="application/json",
            headers={hdrs.CACHE_CONTROL: "no-store"},
        )

    return handler
