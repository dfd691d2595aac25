"""The browser console at `{PATH_PREFIX}/`: one HTML page, two scripts, one stylesheet.

The files live in `service/static/` and are read once at start-up. The page links its assets
with a content hash (`static/console.js?v=1a2b3c4d`), so they can be cached for a year while
the page itself is revalidated on every load (ETag). A strict Content-Security-Policy allows
only these same-origin files and same-origin connections: no inline script or style.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from aiohttp import hdrs, web

STATIC_DIR = Path(__file__).parent / "static"

#: Same-origin script, style and connections; nothing inline, no frames, no forms posting away.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: A Host header that is a plain host name or address, with an optional port.
_PLAIN_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
REVALIDATE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"

_ASSET_TYPES = {
    "console-faults.js": "text/javascript",
    "console.js": "text/javascript",
    "console.css": "text/css",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Asset:
        return cls(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:16] + '"')

    @property
    def version(self) -> str:
        return self.etag.strip('"')[:8]

    def response(self, request: web.Request, cache_control: str) -> web.Response:
        headers = {
            **SECURITY_HEADERS,
            "Content-Security-Policy": content_security_policy(request.host),
            hdrs.ETAG: self.etag,
            hdrs.CACHE_CONTROL: cache_control,
        }
        if self.etag in request.headers.get(hdrs.IF_NONE_MATCH, ""):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=self.body, content_type=self.content_type, charset="utf-8", headers=headers
        )


def content_security_policy(host: str) -> str:
    """The policy, naming ws:// and wss:// on the page's own host as well as 'self'.

    CSP 3 lets 'self' cover WebSocket URLs of the same host, older browsers need them spelled
    out. A Host header that is not a plain host[:port] gets the bare policy.
    """
    if not _PLAIN_HOST.fullmatch(host):
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace(
        "connect-src 'self'", f"connect-src 'self' ws://{host} wss://{host}"
    )


def load_assets() -> tuple[Asset, dict[str, Asset]]:
    """The page (with its asset links versioned) and the assets it links, by file name."""
    assets = {
        name: Asset.of((STATIC_DIR / name).read_bytes(), content_type)
        for name, content_type in _ASSET_TYPES.items()
    }
    html = (STATIC_DIR / "console.html").read_text("utf-8")
    for name, asset in assets.items():
        html = html.replace("{{" + name + "}}", f"static/{name}?v={asset.version}")
    return Asset.of(html.encode("utf-8"), "text/html"), assets


def add_console_routes(app: web.Application, prefix: str) -> None:
    """Serves the console at `{prefix}/` and its assets at `{prefix}/static/{name}`."""
    page, assets = load_assets()

    async def index(request: web.Request) -> web.Response:
        return page.response(request, REVALIDATE)

    async def static(request: web.Request) -> web.Response:
        asset = assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        versioned = request.query.get("v") == asset.version
        return asset.response(request, IMMUTABLE if versioned else REVALIDATE)

    async def add_slash(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(prefix + "/")

    app.router.add_get(prefix + "/", index, allow_head=True)
    app.router.add_get(prefix + "/static/{name}", static, allow_head=True)
    if prefix:
        app.router.add_get(prefix, add_slash, allow_head=True)
