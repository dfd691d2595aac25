"""BACKPLANE_URL for Redis: checked before the process listens, and shown without its passwords.

redis-py turns the URL's query into connection options (`?ssl_ca_certs=/ca.pem`,
`?socket_timeout=2`); a misspelt one would only fail on the first connect, in the background,
so `check_url` builds a connection object (which connects nowhere) up front. A password may sit
in the userinfo (`redis://user:PASSWORD@host`) or in the query (`?password=PASSWORD`, which
redis-py also reads): `redact` masks both wherever the URL is shown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit


def connection_pool(url: str, **options: Any) -> Any:
    """redis-py's pool for `url`; ValueError naming the problem if the URL is not usable."""
    from redis.asyncio.connection import ConnectionPool

    try:
        pool = ConnectionPool.from_url(url, **options)
        pool.make_connection()  # type: ignore[no-untyped-call]
    except (TypeError, ValueError) as error:
        raise ValueError(f"{redact(url)}: {error}") from None
    return pool


def check_url(url: str) -> None:
    """Raise ValueError (one line, no password) if redis-py cannot use `url`."""
    if urlsplit(url).scheme.endswith("-cluster"):
        from .cluster_url import parse

        parse(url)
    else:
        connection_pool(url)


def redact(url: str) -> str:
    """`url` with its passwords (userinfo's, `?password=`) as ***: for logs, errors, output."""
    parts = urlsplit(url)
    # By hand, not `parts.password`: a cluster URL lists several host:port (no single port).
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    netloc = f"{user}:***@{hosts}" if colon else parts.netloc
    query = "&".join(
        f"{item.partition('=')[0]}=***" if _is_password(item) else item
        for item in parts.query.split("&")
    )
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # unchanged, not re-assembled (urlunsplit would drop an empty `//`)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def passwords(url: str) -> list[str]:
    """Every password `url` holds, as written and as redis-py decodes it: for the log filter."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    found = []
    if ":" in userinfo:
        written = userinfo.partition(":")[2]
        found += [written, unquote(written)]
    for item in parts.query.split("&"):
        if _is_password(item):
            written = item.partition("=")[2]
            found += [written, unquote_plus(written)]
    return list(dict.fromkeys(text for text in found if text))


def _is_password(option: str) -> bool:
    """A query item redis-py reads as the password (it decodes the names, as parse_qs does)."""
    return unquote_plus(option.partition("=")[0]) == "password"
