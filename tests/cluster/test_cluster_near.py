"""The near cache on a Redis Cluster: one invalidation channel per master.

The near cache's own tests that hold on any Redis run here on the session's
cluster (imported below, with the fixtures ``near`` and ``elsewhere``). The
rest checks what only a cluster has: a channel on every master, the copy
emptied when one master's channel drops, when a master fails over to its
replica and when a slot moves, and the channels following the new masters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis import test_redis_near
from tests.redis.test_redis_near import (  # noqa: F401 - collected here, on the cluster
    eventually,
    near_backend,
    near_hit,
    test_a_change_in_another_process_evicts_the_copy,
    test_a_change_through_another_client_evicts_within_a_bound,
    test_a_process_reads_its_own_writes_at_once,
    test_an_expiry_on_the_server_evicts_the_copy,
    test_async_reads_hit_the_copy,
    test_each_value_type_reads_through_its_own_codec,
    test_expiry_follows_the_caches_clock,
    test_get_or_set_and_get_many_hit_the_copy_too,
    test_near_max_entries_bounds_the_copy,
    test_the_repr_says_near_cache,
    test_the_url_can_turn_it_on,
    test_with_namespace_keeps_the_near_cache,
    warm,
)
from tests.redis_cluster import LocalCluster
from tests.redis_server import command

Cache = ConnectionCache[Any]

# The same fixtures as there, on the cluster.
near = test_redis_near.near
elsewhere = test_redis_near.elsewhere

# Keys enough that every bucket, so every master, holds some.
KEYS = [f"user:{n}" for n in range(48)]


def spread(cache: Cache, backend: RedisBackend, cluster: LocalCluster) -> dict[int, str]:
    """One key of ``KEYS`` per master (port -> key), every key stored and warmed."""
    cache.set_many(dict.fromkeys(KEYS, "old"))
    for key in KEYS:
        warm(cache, key)
    by_master: dict[int, str] = {}
    for key in KEYS:
        by_master.setdefault(cluster.master_of(backend.layout.bucket(key).prefix), key)
    assert len(by_master) == len(cluster.primaries())
    return by_master


def get_calls(cluster: LocalCluster) -> int:
    calls = 0
    for port in cluster.primaries():
        client = cluster.client(port)
        try:
            stats = client.info("commandstats")
        finally:
            client.close()
        calls += int(stats.get("cmdstat_get", {}).get("calls", 0))
        calls += int(stats.get("cmdstat_mget", {}).get("calls", 0))
    return calls


def channels_on(cluster: LocalCluster, port: int) -> int:
    """How many pubsub connections the node on ``port`` has."""
    client = cluster.client(port)
    try:
        listed = command(client, "CLIENT", "LIST", "TYPE", "pubsub")
    finally:
        client.close()
    text = listed.decode() if isinstance(listed, bytes) else str(listed)
    return len([line for line in text.splitlines() if line.strip()])


def channel_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("conncache-near-")]


@pytest.fixture
def own_near(own_cluster: LocalCluster) -> Iterator[tuple[Cache, Cache, RedisBackend]]:
    """A near cache and a plain one (another process's stand-in) on a cluster of this
    test's own, which may lose nodes."""
    backend = near_backend(own_cluster.url, "svc", socket_timeout=0.5)
    cache: Cache = ConnectionCache(300)
    cache.use_backend(backend)
    writer: Cache = ConnectionCache.from_url(own_cluster.url, namespace="svc")
    yield cache, writer, backend
    cache.use_backend(None)
    writer_backend = writer.backend
    writer.use_backend(None)
    backend.close()
    assert isinstance(writer_backend, RedisBackend)
    writer_backend.close()


def test_near_hits_on_every_master_cost_no_round_trip(
    near: Cache, redis_cluster: LocalCluster
) -> None:
    backend = near.backend
    assert isinstance(backend, RedisBackend)
    spread(near, backend, redis_cluster)
    before, near_hits = get_calls(redis_cluster), near.stats.near_hits

    for key in KEYS:
        assert near.get(key) == "old"
    assert near.get_many(KEYS) == dict.fromkeys(KEYS, "old")

    assert get_calls(redis_cluster) == before
    assert near.stats.near_hits == near_hits + 2 * len(KEYS)


def test_every_master_has_a_channel_and_its_changes_evict(
    near: Cache, elsewhere: Cache, redis_cluster: LocalCluster
) -> None:
    backend = near.backend
    assert isinstance(backend, RedisBackend)
    by_master = spread(near, backend, redis_cluster)
    for port in by_master:
        assert channels_on(redis_cluster, port) >= 1

    elsewhere.set_many(dict.fromkeys(KEYS, "new"))

    eventually(lambda: near.get_many(KEYS) == dict.fromkeys(KEYS, "new"))


def test_one_masters_channel_dropping_empties_the_whole_copy(
    near: Cache, elsewhere: Cache, redis_cluster: LocalCluster
) -> None:
    backend = near.backend
    assert isinstance(backend, RedisBackend)
    by_master = spread(near, backend, redis_cluster)
    dropped, *others = by_master
    client = redis_cluster.client(dropped)
    try:
        assert command(client, "CLIENT", "KILL", "TYPE", "pubsub") >= 1
    finally:
        client.close()

    # A key of another master is gone from the copy too: what the dropped
    # channel missed may have been about any key of that master, and the copy
    # cannot tell which.
    eventually(lambda: not near_hit(near, by_master[others[0]]))
    elsewhere.set(by_master[dropped], "new")
    eventually(lambda: near.get(by_master[dropped]) == "new")
    assert warm(near, by_master[dropped]) == "new"  # the channel is back


def test_closing_the_backend_ends_every_masters_channel(
    redis_cluster: LocalCluster, namespace: str
) -> None:
    before = set(channel_threads())
    backend = near_backend(redis_cluster.url, namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    # A channel per master, and the thread that follows the slot map.
    mine = set(channel_threads()) - before
    assert len(mine) == len(redis_cluster.primaries()) + 1

    backend.close()

    assert [thread for thread in mine if thread.is_alive()] == []


def test_a_dropped_cache_ends_its_channels(redis_cluster: LocalCluster, namespace: str) -> None:
    import gc

    before = set(channel_threads())
    backend = near_backend(redis_cluster.url, namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    mine = set(channel_threads()) - before
    assert mine

    del cache
    gc.collect()

    eventually(lambda: not any(thread.is_alive() for thread in mine))
    backend.close()


@pytest.mark.slow
def test_a_master_failover_empties_the_copy_and_the_channels_follow_the_new_master(
    own_near: tuple[Cache, Cache, RedisBackend], own_cluster: LocalCluster
) -> None:
    cache, writer, backend = own_near
    by_master = spread(cache, backend, own_cluster)
    victim = next(iter(by_master))
    replica = own_cluster.replica_of(victim)
    survivor = next(key for port, key in by_master.items() if port != victim)

    own_cluster.kill(victim)  # SIGKILL: no goodbye

    # The victim's channel dropped: nothing is served from the copy, not even
    # what lives on the masters that are fine.
    eventually(lambda: not near_hit(cache, survivor))
    own_cluster.wait_until_serving()  # its replica took over its slots
    assert replica in own_cluster.primaries()
    eventually(lambda: channels_on(own_cluster, replica) >= 1)
    moved = by_master[victim]
    writer.set(moved, "after the failover")
    eventually(lambda: cache.get(moved) == "after the failover")

    # The copy serves again, kept coherent by the new master's channel.
    assert warm(cache, moved) == "after the failover"
    writer.set(moved, "newer")
    eventually(lambda: cache.get(moved) == "newer")
    writer.invalidate_many(KEYS)
    eventually(lambda: cache.get_many(KEYS) == {})


@pytest.mark.slow
def test_a_slot_moved_to_another_master_empties_the_copy(
    own_near: tuple[Cache, Cache, RedisBackend], own_cluster: LocalCluster
) -> None:
    cache, writer, backend = own_near
    by_master = spread(cache, backend, own_cluster)
    bucket = backend.layout.bucket(KEYS[0])
    slot = redis.crc.key_slot(bucket.prefix.encode())
    source = own_cluster.master_of(bucket.prefix)
    target = next(port for port in by_master if port != source)
    elsewhere_key = next(key for port, key in by_master.items() if port != source)
    warm(cache, KEYS[0])

    own_cluster.move_slot(slot, source, target)

    # The slot map changed: the whole copy was emptied (it may have been read
    # from either master meanwhile), and the key now lives on the target.
    eventually(lambda: not near_hit(cache, elsewhere_key))
    assert own_cluster.master_of(bucket.prefix) == target
    assert warm(cache, KEYS[0]) == "old"
    writer.set(KEYS[0], "on the new master")
    eventually(lambda: cache.get(KEYS[0]) == "on the new master")
