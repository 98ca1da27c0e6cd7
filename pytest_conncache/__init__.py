"""pytest-conncache: a thread-safe TTL cache for services, and the pytest plugin that tests them.

Production code imports this package; it never imports pytest or
time-machine. The plugin lives in ``pytest_conncache.plugin``.
"""

from __future__ import annotations

from importlib import import_module
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

# Where each public name lives. Imported on first use, not here: the pytest
# plugin is this package's submodule, so whatever this file imports, every
# pytest run pays for, cache or not. RedisBackend and its errors need redis
# (the optional ``redis`` extra); the serializers pull in pickle.
_HOMES = {
    "assert_cached": "_assertions",
    "assert_invalidated": "_assertions",
    "assert_not_cached": "_assertions",
    "DEFAULT_TTL": "_cache",
    "ConnectionCache": "_cache",
    "default_clock": "_clock",
    "cached": "_decorator",
    "expect_cache": "_expect",
    "FrozenClock": "_frozen",
    "hookimpl": "_hooks",
    "observers": "_hooks",
    "connection_cache": "_singleton",
    "CacheStats": "_stats",
    "RedisBackend": "_redis",
    "ClusterNodeError": "_redis_io",
    "NotReplicated": "_redis_io",
    "JsonSerializer": "_serializers",
    "PickleSerializer": "_serializers",
}

if TYPE_CHECKING:
    from ._assertions import assert_cached, assert_invalidated, assert_not_cached
    from ._cache import DEFAULT_TTL, ConnectionCache
    from ._clock import default_clock
    from ._decorator import cached
    from ._expect import expect_cache
    from ._frozen import FrozenClock
    from ._hooks import hookimpl, observers
    from ._redis import RedisBackend
    from ._redis_io import ClusterNodeError, NotReplicated
    from ._serializers import JsonSerializer, PickleSerializer
    from ._singleton import connection_cache
    from ._stats import CacheStats


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # the next lookup finds it without this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
