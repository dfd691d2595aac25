"""BACKPLANE_URL for a Redis Cluster: `redis-cluster://[user:password@]host:port[,host:port...]`.

`rediss-cluster://` is the same over TLS. Every listed node is a startup node (the topology is
read from whichever answers); the query holds redis-py connection options as for redis://,
checked the same way, and the path may only name database 0, the only one a cluster has.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from urllib.parse import urlsplit

from redis.asyncio.connection import parse_url

from ..urlsecrets import redact
from .redis_url import connection_pool

#: Cluster scheme -> the single-node scheme whose options it takes.
SCHEMES = {"redis-cluster": "redis", "rediss-cluster": "rediss"}


class ClusterURL(NamedTuple):
    """The startup nodes; the connection class and options every node connection gets; the
    options the URL itself gave (for redis-py's `RedisCluster`, which fills in the rest)."""

    startup: list[tuple[str, int]]
    connection_class: type[Any]
    options: dict[str, Any]
    given: dict[str, Any]


def parse(url: str) -> ClusterURL:
    """ValueError in one line (no password) if `url` is not a usable cluster URL."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ValueError(f"{redact(url)}: expected redis-cluster:// or rediss-cluster://")
    userinfo, at, hosts = parts.netloc.rpartition("@")
    startup = [_address(url, item) for item in hosts.split(",")]
    if parts.path not in ("", "/", "/0"):
        raise ValueError(f"{redact(url)}: a Redis Cluster has database 0 only, not {parts.path!r}")
    host, port = startup[0]
    single = f"{SCHEMES[parts.scheme]}://{userinfo}{at}{_bracket(host)}:{port}/0"
    if parts.query:
        single += "?" + parts.query
    try:
        pool = connection_pool(single)
    except ValueError as error:  # name the URL given, not the one made here
        raise ValueError(f"{redact(url)}: {str(error).partition(': ')[2]}") from None
    options = {
        key: value
        for key, value in pool.connection_kwargs.items()
        if key not in ("host", "port", "db")
    }
    given = {
        key: value
        for key, value in parse_url(single).items()
        if key not in ("host", "port", "db", "connection_class")
    }
    return ClusterURL(startup, pool.connection_class, options, given)


def _address(url: str, item: str) -> tuple[str, int]:
    host, colon, port = item.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{redact(url)}: {item!r} is not host:port")
    return host, int(port)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host
