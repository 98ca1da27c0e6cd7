"""Tags on Redis: one set per tag, exact under eviction, bounded under churn."""

from __future__ import annotations

import time
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer

Cache = ConnectionCache[Any]


def _tag_set(backend: RedisBackend, tag: str) -> set[bytes | str]:
    return set(backend.client.smembers(f"{backend.namespace}#tag:{tag}"))


def _fill(cache: Cache) -> None:
    cache.set("user-connections:abc", [1], tags=["user:abc"])
    cache.set_many({f"user-record:abc:{i}": i for i in range(20)}, tags=["user:abc"])
    cache.set_many({f"user-record:def:{i}": i for i in range(20)}, tags=["user:def"])


def test_a_tag_set_is_known_complete_once_the_index_is(cache: Cache, backend: RedisBackend) -> None:
    cache.invalidate_prefix("nothing:")  # a new namespace's index becomes known complete
    _fill(cache)
    assert b"m" in _tag_set(backend, "user:abc")
    assert cache.invalidate_tag("user:abc") == 21
    assert not backend.client.exists(f"{backend.namespace}#tag:user:abc")  # emptied: gone


def test_invalidate_tag_removes_every_entry_after_its_set_was_evicted(
    cache: Cache, backend: RedisBackend
) -> None:
    _fill(cache)
    backend.client.delete(f"{backend.namespace}#tag:user:abc")  # what an eviction does
    cache.set("user-record:abc:99", 99, tags=["user:abc"])  # recreates the set, unmarked
    assert b"m" not in _tag_set(backend, "user:abc")
    assert cache.invalidate_tag("user:abc") == 22
    stored = cache.keys()
    assert not [k for k in stored if k.startswith("user-record:abc")]
    assert len([k for k in stored if k.startswith("user-record:def")]) == 20


def test_invalidate_tag_removes_every_entry_after_the_index_was_evicted(
    cache: Cache, backend: RedisBackend
) -> None:
    cache.invalidate_prefix("nothing:")
    _fill(cache)
    backend.client.delete(backend.index_key)
    backend.client.delete(f"{backend.namespace}#tag:user:def")
    cache.set("user-record:def:99", 99, tags=["user:def"])
    assert cache.invalidate_tag("user:def") == 21
    assert cache.invalidate_tag("user:abc") == 21
    assert cache.keys() == []


def test_a_member_whose_entry_lost_the_tag_is_not_removed(
    cache: Cache, backend: RedisBackend, clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=0.05, tags=["t"])
    time.sleep(0.1)  # the server expired it (PX); its membership stays behind
    cache.set("k", 2)  # the key again, untagged
    assert cache.invalidate_tag("t") == 0
    assert cache.get("k") == 2


@pytest.mark.slow
def test_tag_sets_stay_bounded_under_a_churn_of_a_million_tagged_keys(
    redis_server: RedisServer, namespace: str, clock: FakeClock
) -> None:
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace)
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)
    client = backend.client

    def members() -> int:
        names = client.scan_iter(match=f"{backend.namespace}#tag:*", count=1000)
        return sum(int(client.scard(name)) for name in names)

    try:
        counts = []
        for chunk in range(1000):  # a million keys, 0.05 s each on the server (PX)
            cache.set_many(
                {f"user-record:{chunk}:{i}": i for i in range(1000)},
                ttl=0.05,
                tags=[f"user:{chunk % 50}", "all-records"],
            )
            if chunk in (199, 999):
                counts.append(members())
        # Each tagged store checks a few members and drops those whose entry
        # expired: the sets hold about what the last calls added, whatever the churn.
        early, late = counts
        assert late < 1.5 * early + 1000, counts
        assert late < 100_000, counts
    finally:
        backend.drop_namespace()
        backend.close()
