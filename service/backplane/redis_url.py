"""BACKPLANE_URL for Redis: checked before the process listens, and shown without its passwords.

redis-py turns the URL's query into connection options (`?ssl_ca_certs=/ca.pem`,
`?socket_timeout=2`); a misspelt one would only fail on the first connect, in the background,
so `check_url` builds a connection object (which connects nowhere) up front. A password may sit
in the userinfo (`redis://user:PASSWORD@host`) or in the query (`?password=PASSWORD`, which
redis-py also reads): `urlsecrets.redact` masks both wherever the URL is shown.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from ..urlsecrets import redact


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
