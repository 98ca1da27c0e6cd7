"""pytest-conncache: a thread-safe TTL cache for services, and the pytest plugin that tests them.

Production code imports this package; it never imports pytest or
time-machine. The plugin lives in ``pytest_conncache.plugin``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "DEFAULT_TTL",
    "CacheStats",
    "ConnectionCache",
    "FrozenClock",
    "JsonSerializer",
    "PickleSerializer",
    "RedisBackend",
    "assert_cached",
    "assert_invalidated",
    "assert_not_cached",
    "connection_cache",
    "default_clock",
    "hookimpl",
    "observers",
]

from ._assertions import assert_cached, assert_invalidated, assert_not_cached
from ._cache import DEFAULT_TTL, ConnectionCache
from ._clock import default_clock
from ._frozen import FrozenClock
from ._hooks import hookimpl, observers
from ._serializers import JsonSerializer, PickleSerializer
from ._singleton import connection_cache
from ._stats import CacheStats

if TYPE_CHECKING:
    from ._redis import RedisBackend


def __getattr__(name: str) -> Any:
    # RedisBackend imports redis (the optional ``redis`` extra): only on first use.
    if name == "RedisBackend":
        from ._redis import RedisBackend

        return RedisBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
