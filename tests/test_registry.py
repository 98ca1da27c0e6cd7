"""The weak registry that per-test isolation walks: every live cache, and no dead one."""

from __future__ import annotations

import gc
import threading
import tracemalloc
import weakref
from typing import Any

from pytest_conncache import ConnectionCache
from pytest_conncache._registry import counts, live_caches, restart


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


def test_counts_read_many_times_stay_exact() -> None:
    # Reading an itertools.count advances it (see _stats.Counters): the reads
    # themselves must never show up in the counts.
    cache: ConnectionCache[Any] = ConnectionCache(10)
    cache.set("k", 1)
    for _ in range(100):
        assert cache.stats.sets == 1
        assert cache.stats.hits == 0
    cache.get("k")
    assert (cache.stats.sets, cache.stats.hits, cache.stats.misses) == (1, 1, 0)


def test_counts_stay_exact_while_threads_count_and_read() -> None:
    cache: ConnectionCache[Any] = ConnectionCache(10)
    cache.set("k", 1)
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            cache.stats  # noqa: B018 - the read is the point

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for _ in range(20_000):
            cache.get("k")
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    assert cache.stats.hits == 20_000


def test_a_collected_cache_still_counts_for_the_test() -> None:
    restart()
    cache: ConnectionCache[Any] = ConnectionCache(10)
    cache.set("a", 1)
    cache.set("b", 2)
    del cache
    gc.collect()
    ConnectionCache(10)  # making a cache adds up the collected ones' counts
    assert counts()["sets"] == 2


def test_making_and_dropping_caches_all_day_keeps_no_memory() -> None:
    # Without the plugin nobody calls restart(): what the collected caches
    # counted must be added up, not kept cache by cache.
    def churn(times: int) -> None:
        for _ in range(times):
            cache: ConnectionCache[Any] = ConnectionCache(10)
            cache.set("k", 1)
            del cache

    churn(200)
    gc.collect()
    tracemalloc.start()
    try:
        churn(2_000)
        gc.collect()
        after_few, _ = tracemalloc.get_traced_memory()
        churn(20_000)
        gc.collect()
        after_many, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 18,000 more caches kept would be well over a megabyte.
    assert after_many - after_few < 100_000
