"""The console's HTTP side: content types, caching, the CSP, and a page with nothing inline."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from service.console import CONTENT_SECURITY_POLICY, add_console_routes, content_security_policy

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture(params=["", "/relay"])
async def console(request: pytest.FixtureRequest, aiohttp_client: MakeClient) -> tuple[Client, str]:
    app = web.Application()
    add_console_routes(app, request.param)
    return await aiohttp_client(app), request.param


class Inventory(HTMLParser):
    """What a page loads and whether anything would need 'unsafe-inline'."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.inline: list[str] = []
        self.unlabelled: list[str] = []
        self.labels: set[str] = set()
        self.controls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for name in a:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}>")
        if tag == "script":
            if a.get("src"):
                self.links.append(str(a["src"]))
            else:
                self.inline.append("<script> without src")
        if tag == "style":
            self.inline.append("<style>")
        if tag == "link" and a.get("rel") == "stylesheet":
            self.links.append(str(a["href"]))
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in ("input", "select", "textarea") and a.get("type") != "radio":
            self.controls.append(str(a.get("id")))


async def test_page_and_assets_have_types_caching_and_a_strict_csp(
    console: tuple[Client, str],
) -> None:
    client, prefix = console
    page = await client.get(prefix + "/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Cache-Control"] == "no-cache"
    host = f"{page.url.host}:{page.url.port}"
    assert page.headers["Content-Security-Policy"] == content_security_policy(host)
    assert f"connect-src 'self' ws://{host} wss://{host};" in content_security_policy(host)
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "'unsafe-inline'" not in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY

    html = Inventory()
    html.feed(await page.text())
    assert html.inline == []
    assert sorted(html.links) == sorted(
        re.findall(r'(?:src|href)="(static/[^"]+)"', await page.text())
    )
    types = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}
    for link in html.links:
        asset = await client.get(f"{prefix}/{link}")
        assert asset.status == 200, link
        assert asset.headers["Content-Type"] == types[link.split("?")[0].rsplit(".", 1)[1]]
        assert asset.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
        unversioned = await client.get(f"{prefix}/{link.split('?')[0]}")
        assert unversioned.headers["Cache-Control"] == "no-cache"
        assert await unversioned.read() == await asset.read()


async def test_every_control_has_a_label(console: tuple[Client, str]) -> None:
    client, prefix = console
    html = Inventory()
    html.feed(await (await client.get(prefix + "/")).text())
    assert html.controls
    assert set(html.controls) <= html.labels


def test_a_strange_host_header_cannot_add_to_the_policy() -> None:
    assert content_security_policy("evil; script-src *") == CONTENT_SECURITY_POLICY
    assert content_security_policy("[::1]:8080").count("ws://[::1]:8080") == 1


async def test_etag_revalidation_answers_304(console: tuple[Client, str]) -> None:
    client, prefix = console
    first = await client.get(prefix + "/")
    again = await client.get(prefix + "/", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304
    assert await again.read() == b""
    changed = await client.get(prefix + "/", headers={"If-None-Match": '"stale"'})
    assert changed.status == 200


async def test_unknown_asset_is_404_and_head_works(console: tuple[Client, str]) -> None:
    client, prefix = console
    assert (await client.get(prefix + "/static/secret.py")).status == 404
    assert (await client.get(prefix + "/static/../console.py")).status == 404
    head = await client.head(prefix + "/")
    assert head.status == 200


async def test_the_prefix_without_its_slash_redirects(aiohttp_client: MakeClient) -> None:
    app = web.Application()
    add_console_routes(app, "/relay")
    client = await aiohttp_client(app)
    response = await client.get("/relay", allow_redirects=False)
    assert response.status == 308
    assert response.headers["Location"] == "/relay/"
