"""What only the cluster backend does: finding the cluster, buckets, their cost, their names.

Every test runs on the session's cluster (three masters with a replica each),
in a fresh namespace, and looks at the nodes themselves with plain clients
where the placement of keys is the point.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pytest
import redis
import redis.asyncio.cluster
import redis.cluster
from redis.crc import key_slot

from pytest_conncache import ClusterNodeError, ConnectionCache, RedisBackend
from pytest_conncache._redis_layout import CLUSTER_BUCKETS
from tests.redis.fakes import FakeClock
from tests.redis_cluster import LocalCluster

Cache = ConnectionCache[Any]


def _names(cluster: LocalCluster, port: int, match: str) -> list[bytes]:
    client = cluster.client(port)
    try:
        return list(client.scan_iter(match=match, count=1000))
    finally:
        client.close()


def _namespace_names(cluster: LocalCluster, namespace: str) -> dict[int, list[bytes]]:
    """Every Redis key of ``namespace`` on each master, by port."""
    return {port: _names(cluster, port, f"*{namespace}#*") for port in cluster.primaries()}


def _command_calls(cluster: LocalCluster, command: str) -> int:
    """How many times the masters ran ``command`` so far."""
    calls = 0
    for port in cluster.primaries():
        client = cluster.client(port)
        try:
            stats: dict[str, Any] = client.info("commandstats")
        finally:
            client.close()
        calls += int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
    return calls


# -- finding the cluster ----------------------------------------------------------------------


def test_from_url_finds_the_cluster_from_any_node(redis_cluster: LocalCluster) -> None:
    backends = [
        RedisBackend.from_url(f"redis://127.0.0.1:{port}/0", namespace="found")
        for port in redis_cluster.ports
    ]
    try:
        assert all(backend.cluster for backend in backends)
        caches: list[Cache] = []
        for backend in backends:
            cache: Cache = ConnectionCache()
            cache.use_backend(backend)
            caches.append(cache)
        caches[0].set_many({f"user:{i}": i for i in range(20)})
        assert all(cache.get_many([f"user:{i}" for i in range(20)]) for cache in caches)
        assert caches[-1].invalidate_prefix("user:") == 20
        assert caches[2].keys() == []
    finally:
        backends[0].drop_namespace()
        for backend in backends:
            backend.close()


def test_cluster_true_uses_the_cluster_without_asking(redis_cluster: LocalCluster) -> None:
    backend = RedisBackend.from_url(redis_cluster.url, namespace="forced", cluster=True)
    try:
        assert isinstance(backend.client, redis.cluster.RedisCluster)
        assert "cluster" in repr(backend)
    finally:
        backend.close()


def test_cluster_false_talks_to_one_node_and_says_so_when_it_meets_the_cluster(
    redis_cluster: LocalCluster, namespace: str, clock: FakeClock
) -> None:
    backend = RedisBackend.from_url(redis_cluster.url, namespace=namespace, cluster=False)
    assert not backend.cluster
    cache: Cache = ConnectionCache(clock=clock)
    try:
        with pytest.raises(ClusterNodeError, match="is a node of a Redis Cluster.*cluster=True"):
            cache.use_backend(backend)  # the stamps of its one bucket, on whichever node
            for i in range(50):  # entries and the index: most not on the URL's node
                cache.set(f"user:{i}", i)
    finally:
        backend.close()


def test_a_bad_cluster_argument_is_refused(redis_cluster: LocalCluster) -> None:
    with pytest.raises(TypeError, match="cluster must be True, False or None, got 'yes'"):
        RedisBackend.from_url(redis_cluster.url, namespace="x", cluster="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("namespace", ["a{b", "a}b", "{app}"])
def test_a_namespace_with_braces_is_refused_on_a_cluster(
    redis_cluster: LocalCluster, namespace: str
) -> None:
    with pytest.raises(ValueError, match=r"namespace must not contain '\{' or '\}'"):
        RedisBackend.from_url(redis_cluster.url, namespace=namespace)


def test_a_database_other_than_0_is_refused_on_a_cluster(redis_cluster: LocalCluster) -> None:
    url = redis_cluster.url.rsplit("/", 1)[0] + "/3"
    with pytest.raises(ValueError, match="database 0 only"):
        RedisBackend.from_url(url, namespace="x", cluster=True)


def test_a_client_that_decodes_responses_is_refused(redis_cluster: LocalCluster) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url, decode_responses=True)
    try:
        with pytest.raises(ValueError, match="decode_responses=False"):
            RedisBackend(client, namespace="x")
    finally:
        client.close()


@pytest.mark.asyncio
async def test_a_redis_cluster_client_of_ones_own_serves_both_halves(
    redis_cluster: LocalCluster, namespace: str
) -> None:
    client = redis.cluster.RedisCluster.from_url(redis_cluster.url)
    backend = RedisBackend(client, namespace=namespace)
    cache: Cache = ConnectionCache()
    cache.use_backend(backend)
    try:
        await cache.aset_many({f"user:{i}": i for i in range(30)})
        assert cache.get_many(["user:1", "user:2"]) == {"user:1": 1, "user:2": 2}
        assert await cache.ainvalidate_prefix("user:") == 30
        assert cache.size() == 0
    finally:
        backend.drop_namespace()
        backend.close()


def test_the_one_server_names_are_refused_on_a_cluster(backend: RedisBackend) -> None:
    with pytest.raises(AttributeError, match="backend.layout.buckets"):
        _ = backend.prefix
    with pytest.raises(AttributeError, match="16 buckets"):
        _ = backend.index_key


def test_the_cache_says_where_it_is(cache: Cache, backend: RedisBackend) -> None:
    assert f"backend=redis cluster namespace={backend.namespace!r}" in repr(cache)


# -- buckets ----------------------------------------------------------------------------------


def test_bucket_hash_tags_take_one_sixteenth_of_the_slots_each(backend: RedisBackend) -> None:
    buckets = backend.layout.buckets
    assert len(buckets) == CLUSTER_BUCKETS == 16
    for bucket in buckets:
        slot = key_slot(bucket.prefix.encode())
        assert bucket.number * 1024 <= slot < (bucket.number + 1) * 1024
    # The same names in every process: they depend on the namespace alone.
    again = RedisBackend(backend.client, namespace=backend.namespace)
    assert [b.base for b in again.layout.buckets] == [b.base for b in buckets]


def test_a_namespace_spreads_over_every_master(
    cache: Cache, backend: RedisBackend, redis_cluster: LocalCluster
) -> None:
    cache.set_many({f"user-record:tok{i}:conn": i for i in range(900)})
    per_master = {
        port: len([n for n in names if b"}:" in n])
        for port, names in _namespace_names(redis_cluster, backend.namespace).items()
    }
    assert len(per_master) == 3
    assert sum(per_master.values()) == 900
    assert min(per_master.values()) >= 200  # 5 or 6 of the 16 buckets each: ~300


def test_each_bucket_keeps_its_bookkeeping_in_the_slot_of_its_keys(
    cache: Cache, backend: RedisBackend, redis_cluster: LocalCluster
) -> None:
    cache.set_many({f"user:{i}": i for i in range(200)}, tags=("team:a",))
    cache.invalidate_prefix("nothing:")  # every bucket's index known complete
    cache.get_or_set("user:x", lambda: 1)  # stamps
    found = _namespace_names(redis_cluster, backend.namespace)
    names = [name for names in found.values() for name in names]
    kinds: Counter[str] = Counter()
    for name in names:
        bucket = backend.layout.owner(name)
        assert bucket is not None, name
        assert key_slot(name) == key_slot(bucket.base.encode()), name
        kinds[name[len(bucket.base) :].split(b":")[0].decode()] += 1
    assert kinds["#index"] == 16
    assert kinds["#stamps"] == 16
    assert kinds["#tag"] == 16
    assert kinds[""] == 201  # the entries: "{ns#b}:key"


def test_a_prefix_invalidation_costs_one_script_per_bucket_and_one_wait_per_master(
    cache: Cache, redis_cluster: LocalCluster
) -> None:
    cache.set_many({f"user-record:tok{i}:conn": i for i in range(100)})
    cache.invalidate_prefix("nothing:")  # the first one walks the namespace once
    scripts, waits = _command_calls(redis_cluster, "evalsha"), _command_calls(redis_cluster, "wait")
    assert cache.invalidate_prefix("user-record:tok1") == 11
    assert _command_calls(redis_cluster, "evalsha") - scripts == 16
    assert _command_calls(redis_cluster, "wait") - waits == 3


def test_get_many_sends_one_mget_per_bucket_it_touches(
    cache: Cache, backend: RedisBackend, redis_cluster: LocalCluster
) -> None:
    keys = [f"user-record:tok{i}:conn" for i in range(100)]
    cache.set_many(dict.fromkeys(keys, 1))
    mgets = _command_calls(redis_cluster, "mget")
    assert len(cache.get_many(keys)) == 100
    touched = {backend.layout.bucket(key).number for key in keys}
    assert _command_calls(redis_cluster, "mget") - mgets == len(touched) == 16


def test_drop_namespace_leaves_nothing_on_any_master(
    cache: Cache, backend: RedisBackend, redis_cluster: LocalCluster
) -> None:
    cache.set_many({f"user:{i}": i for i in range(100)}, tags=("a", "b"))
    cache.invalidate_prefix("user:1")
    cache.get_or_set("user:x", lambda: 1)
    bucket = backend.layout.bucket("user:y")
    backend.client.set(bucket.lock_prefix + "user:y", b"held")
    assert backend.drop_namespace() > 100
    assert not any(_namespace_names(redis_cluster, backend.namespace).values())


def test_two_namespaces_with_a_common_start_stay_apart(
    cache: Cache, backend: RedisBackend, clock: FakeClock
) -> None:
    # On one server "a" and "a:b" overlap (documented); on a cluster a
    # namespace's names start with "{ns#", which no other namespace's do.
    other: Cache = ConnectionCache(clock=clock)
    other_backend = backend.with_namespace(backend.namespace + ":b")
    other.use_backend(other_backend)
    try:
        other.set("k", "other")
        cache.set("k", "mine")
        assert cache.keys() == ["k"]
        cache.clear()
        assert other.get("k") == "other"
        assert backend.drop_namespace() > 0
        assert other.get("k") == "other"
    finally:
        other_backend.drop_namespace()


# -- eviction, per bucket ---------------------------------------------------------------------


def test_invalidate_prefix_removes_every_entry_after_one_buckets_index_was_evicted(
    cache: Cache, backend: RedisBackend
) -> None:
    keys = [f"user:{i}" for i in range(200)]
    cache.set_many(dict.fromkeys(keys, 1))
    cache.invalidate_prefix("nothing:")  # every index known complete
    evicted = backend.layout.bucket("user:7")
    backend.client.delete(evicted.index)  # what an eviction does
    cache.set("user:new", 1)  # recreates that index, incomplete and unmarked
    assert cache.invalidate_prefix("user:") == 201
    assert cache.keys() == []
    assert backend.client.zscore(evicted.index, "m") is not None  # rebuilt, known complete


def test_invalidate_tag_removes_every_entry_after_one_buckets_tag_set_was_evicted(
    cache: Cache, backend: RedisBackend
) -> None:
    cache.set_many({f"user:{i}": i for i in range(100)}, tags=("team:a",))
    cache.invalidate_prefix("nothing:")
    bucket = backend.layout.bucket("user:3")
    backend.client.delete(bucket.tag_prefix + "team:a")
    cache.set("user:late", 1, tags=("team:a",))
    assert cache.invalidate_tag("team:a") == 101
    assert cache.keys() == []


def test_a_corrupt_value_in_a_bucket_is_a_miss_counted_as_an_error(
    cache: Cache, backend: RedisBackend, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = backend.layout.bucket("user:1")
    backend.client.set(bucket.prefix + "user:1", b"not an entry")
    with caplog.at_level(logging.WARNING, logger="pytest_conncache"):
        assert cache.get("user:1", "default") == "default"
    assert cache.stats.errors == 1
    assert "cache entry 'user:1' cannot be read" in caplog.text
    assert cache.get_or_set("user:1", lambda: "fresh") == "fresh"
    assert cache.purge_expired() == 0


def test_the_cross_process_lock_lives_in_the_buckets_slot(
    backend: RedisBackend, clock: FakeClock
) -> None:
    locked = RedisBackend(
        backend.client, namespace=backend.namespace, cross_process_lock=True, lock_timeout=0.2
    )
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(locked)
    lock = backend.layout.bucket("k").lock_prefix + "k"
    assert key_slot(lock.encode()) == key_slot(backend.layout.bucket("k").prefix.encode())
    backend.client.set(lock, b"someone-else", px=60_000)  # another process, stuck
    assert cache.get_or_set("k", lambda: "mine") == "mine"  # after lock_timeout
    assert cache.get("k") == "mine"
    assert cache.get_or_set("j", lambda: "free") == "free"
    assert not backend.client.exists(backend.layout.bucket("j").lock_prefix + "j")
