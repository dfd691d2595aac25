"""Backplanes carry room messages: in memory within a process, or between replicas.

`memory://` is the base `Backplane` itself (local rooms only); other schemes (redis://,
rediss://, redis-cluster://, rediss-cluster://) are registered in `SCHEMES` by their modules,
so the app picks one from BACKPLANE_URL without knowing them.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from ..metrics import Metrics
from .base import Backplane

Factory = Callable[[str, Metrics], Backplane]


def _redis(url: str, metrics: Metrics) -> Backplane:
    from .redis import RedisBackplane  # redis-py is imported only when a redis URL is set

    return RedisBackplane(url, metrics)


def _redis_cluster(url: str, metrics: Metrics) -> Backplane:
    from .redis_cluster import RedisClusterBackplane

    return RedisClusterBackplane(url, metrics)


SCHEMES: dict[str, Factory] = {
    "memory": lambda url, metrics: Backplane(metrics),
    "redis": _redis,
    "rediss": _redis,
    "redis-cluster": _redis_cluster,
    "rediss-cluster": _redis_cluster,
}


def create_backplane(url: str, metrics: Metrics) -> Backplane:
    """The backplane named by BACKPLANE_URL's scheme."""
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ValueError(f"no backplane for {scheme}:// in this build")
    return SCHEMES[scheme](url, metrics)


__all__ = ["SCHEMES", "Backplane", "create_backplane"]
