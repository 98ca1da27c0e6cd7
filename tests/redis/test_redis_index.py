"""The namespace's key index behind invalidate_prefix: exact, and bounded."""

from __future__ import annotations

import time
from typing import Any

from pytest_conncache import ConnectionCache, RedisBackend
from pytest_conncache._redis_scripts import PRUNE_EVERY
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer

Cache = ConnectionCache[Any]


def _indexed(backend: RedisBackend) -> int:
    """Index members naming keys (the index also holds its completeness marker)."""
    return int(backend.client.zlexcount(backend.index_key, "[k", "(l"))


def test_every_removal_keeps_the_index_in_step(cache: Cache, backend: RedisBackend) -> None:
    for i in range(20):
        cache.set(f"a:{i}", i)
        cache.set(f"b:{i}", i)
    cache.invalidate("a:0")
    cache.invalidate_pattern("^a:1")
    cache.invalidate_prefix("b:")
    assert _indexed(backend) == cache.size() == 8
    cache.clear()
    assert _indexed(backend) == 0


def test_invalidate_prefix_works_through_many_batches(
    redis_server: RedisServer, namespace: str, clock: FakeClock
) -> None:
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace, scan_batch=7)
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)
    try:
        for i in range(50):
            cache.set(f"user-record:t1:{i}", i)
            cache.set(f"user-record:t2:{i}", i)
        assert cache.invalidate_prefix("user-record:t1:") == 50
        assert cache.size() == 50
        assert cache.stats.invalidations == 50
    finally:
        backend.drop_namespace()
        backend.client.close()


def test_prefixes_beyond_ascii_select_exactly_their_keys(cache: Cache) -> None:
    keys = ["é", "éa", "é\U0010ffff", "ê", "e", "\U0001f600x", "\U0001f601"]
    for key in keys:
        cache.set(key, 1)
    assert cache.invalidate_prefix("é") == 3
    assert cache.invalidate_prefix("\U0001f600") == 1
    assert cache.keys() == sorted(["ê", "e", "\U0001f601"])


def test_entries_the_server_expired_are_pruned_from_the_index(
    cache: Cache, backend: RedisBackend
) -> None:
    # Endless churn of new keys that only ever expire must not grow the index.
    for i in range(PRUNE_EVERY * 2):
        cache.set(f"short:{i}", i, ttl=0.05)
    time.sleep(0.15)
    for i in range(PRUNE_EVERY):
        cache.set(f"long:{i}", i)
    assert _indexed(backend) == PRUNE_EVERY


def test_a_prefix_whose_entries_the_server_expired_counts_nothing(
    cache: Cache, backend: RedisBackend
) -> None:
    cache.set("gone:1", 1, ttl=0.05)
    cache.set("gone:2", 1)
    time.sleep(0.15)
    assert cache.invalidate_prefix("gone:") == 1
    assert _indexed(backend) == 0


def test_drop_namespace_removes_index_stamps_and_locks(cache: Cache, backend: RedisBackend) -> None:
    cache.set("k", 1)
    backend.client.set(f"{backend.namespace}#lock:k", b"t")
    assert backend.drop_namespace() == 4  # the entry, its index, the stamps, the lock
    assert list(backend.client.scan_iter(match=f"{backend.namespace}*")) == []
