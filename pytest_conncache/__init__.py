"""pytest-conncache: a thread-safe TTL cache for services, and the pytest plugin that tests them.

Production code imports this package; it never imports pytest or
time-machine. The plugin lives in ``pytest_conncache.plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_TTL",
    "CacheStats",
    "ClusterNodeError",
    "ConnectionCache",
    "FrozenClock",
    "JsonSerializer",
    "NotReplicated",
    "PickleSerializer",
    "RedisBackend",
    "assert_cached",
    "assert_invalidated",
    "assert_not_cached",
    "cached",
    "connection_cache",
    "default_clock",
    "expect_cache",
    "hookimpl",
    "observers",
]

from ._assertions import assert_cached, assert_invalidated, assert_not_cached
from ._cache import DEFAULT_TTL, ConnectionCache
from ._clock import default_clock
from ._decorator import cached
from ._expect import expect_cache
from ._frozen import FrozenClock
from ._hooks import hookimpl, observers
from ._singleton import connection_cache
from ._stats import CacheStats

if TYPE_CHECKING:
    from ._redis import RedisBackend
    from ._redis_io import ClusterNodeError, NotReplicated
    from ._serializers import JsonSerializer, PickleSerializer


def __getattr__(name: str) -> Any:
    # Imported on first use only: RedisBackend and its errors need redis (the optional
    # ``redis`` extra), and the serializers pull in pickle, which neither
    # in-memory caches nor the plugin's start-up should pay for.
    if name == "RedisBackend":
        from ._redis import RedisBackend

        return RedisBackend
    if name in ("NotReplicated", "ClusterNodeError"):
        from . import _redis_io

        return getattr(_redis_io, name)
    if name in ("JsonSerializer", "PickleSerializer"):
        from . import _serializers

        return getattr(_serializers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
