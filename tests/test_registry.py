"""The weak registry that per-test isolation walks: every live cache, and no dead one."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from pytest_conncache import ConnectionCache
from pytest_conncache._registry import live_caches


def test_a_new_cache_is_listed() -> None:
    cache: ConnectionCache[Any] = ConnectionCache(10)
    assert any(listed is cache for listed in live_caches())


def test_the_registry_keeps_no_cache_alive() -> None:
    cache: ConnectionCache[Any] = ConnectionCache(10)
    ref = weakref.ref(cache)
    del cache
    gc.collect()
    assert ref() is None


def test_a_freed_cache_leaves_the_registry() -> None:
    gc.collect()  # caches other tests left unreachable go first
    before = len(live_caches())
    caches: list[ConnectionCache[Any]] = [ConnectionCache(10) for _ in range(5)]
    assert len(live_caches()) == before + 5
    del caches
    gc.collect()
    assert len(live_caches()) == before
