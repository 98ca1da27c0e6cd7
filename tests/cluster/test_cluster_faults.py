"""Faults on a cluster: a hung master, a lost replica, a failover, a slot on the move.

The promise is the one-server promise: reads and writes fail open, an
invalidation that returns is done, and after it returns no node serves
the key; one that cannot be done raises. On a cluster "done" includes a
replica's acknowledgement: a master that fails right after the call must
not hand a replica holding the removed entries the slot.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from pytest_conncache import ConnectionCache, NotReplicated, RedisBackend
from tests.redis.fakes import FakeClock
from tests.redis_cluster import LocalCluster

Cache = ConnectionCache[Any]


def _entry_on_any_node(cluster: LocalCluster, names: list[str]) -> list[str]:
    """The names among ``names`` that any running node (replicas included) holds:
    what SCAN walks on each node, whichever slots it serves."""
    wanted = set(names)
    held: set[str] = set()
    for node in cluster.running():
        client = cluster.client(node.port)
        try:
            held.update(n.decode() for n in client.scan_iter(count=1000) if n.decode() in wanted)
        finally:
            client.close()
    return sorted(held)


def _names(backend: RedisBackend, keys: list[str]) -> list[str]:
    return [backend.layout.bucket(key).prefix + key for key in keys]


@pytest.fixture
def fast_backend(redis_cluster: LocalCluster, namespace: str) -> Iterator[RedisBackend]:
    """A cluster backend that gives up on a silent node after 0.25 s."""
    backend = RedisBackend.from_url(redis_cluster.url, namespace=namespace, socket_timeout=0.25)
    yield backend
    backend.drop_namespace()
    backend.close()


# -- a master that hangs ----------------------------------------------------------------------


def test_reads_fail_open_and_invalidations_fail_loud_while_a_master_hangs(
    fast_backend: RedisBackend, redis_cluster: LocalCluster, clock: FakeClock
) -> None:
    cache: Cache = ConnectionCache(60, clock=clock)
    cache.use_backend(fast_backend)
    cache.set("user:1", "v")
    master = redis_cluster.master_of(_names(fast_backend, ["user:1"])[0])
    admin = redis_cluster.client(master)
    try:
        admin.client_pause(2000)  # every command of its clients waits; no failover
        assert cache.get("user:1", "missed") == "missed"
        assert cache.get_or_set("user:1", lambda: "computed") == "computed"
        assert cache.stats.errors >= 1
        with pytest.raises((redis.TimeoutError, redis.ConnectionError)):
            cache.invalidate("user:1")
    finally:
        admin.client_unpause()
        admin.close()
    deadline = time.monotonic() + 10
    while True:  # the outage ends with the first answer a second after the last fault
        cache.set("user:1", "back")
        if cache.get("user:1") == "back" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert cache.get("user:1") == "back"
    assert cache.invalidate("user:1") is True


# -- replica acknowledgements -----------------------------------------------------------------


def test_invalidations_wait_for_one_replica_per_master_they_touch(
    cache: Cache, backend: RedisBackend, redis_cluster: LocalCluster
) -> None:
    cache.set_many({f"user:{i}": i for i in range(50)})
    cache.invalidate_many([f"other:{i}" for i in range(50)])  # every master knows the script
    waits = _wait_calls(redis_cluster)
    assert cache.invalidate("user:1") is True
    assert _wait_calls(redis_cluster) == waits + 1
    assert cache.invalidate_many([f"user:{i}" for i in range(2, 50)]) == 48
    assert _wait_calls(redis_cluster) == waits + 4  # one per master


def test_replica_ack_timeout_none_sends_no_wait(
    redis_cluster: LocalCluster, namespace: str, clock: FakeClock
) -> None:
    backend = RedisBackend.from_url(
        redis_cluster.url, namespace=namespace, replica_ack_timeout=None
    )
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)
    try:
        cache.set_many({f"user:{i}": i for i in range(50)})
        waits = _wait_calls(redis_cluster)
        assert cache.invalidate_prefix("user:") == 50
        assert _wait_calls(redis_cluster) == waits
    finally:
        backend.drop_namespace()
        backend.close()


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "replica_ack_timeout must be a positive number of seconds or None, got 0"),
        (-1.0, ValueError, "replica_ack_timeout .* got -1.0"),
        (math.inf, ValueError, "replica_ack_timeout .* got inf"),
        ("1", TypeError, "replica_ack_timeout .* got '1'"),
        (True, TypeError, "replica_ack_timeout .* got True"),
    ],
)
def test_a_bad_replica_ack_timeout_is_refused(
    backend: RedisBackend, value: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RedisBackend(backend.client, namespace="x", replica_ack_timeout=value)


def _wait_calls(cluster: LocalCluster) -> int:
    calls = 0
    for port in cluster.primaries():
        client = cluster.client(port)
        try:
            stats: dict[str, Any] = client.info("commandstats")
        finally:
            client.close()
        calls += int(stats.get("cmdstat_wait", {}).get("calls", 0))
    return calls


@pytest.mark.slow
def test_an_invalidation_no_replica_acknowledged_raises_until_the_replica_is_known_gone(
    own_cluster: LocalCluster, clock: FakeClock
) -> None:
    backend = RedisBackend.from_url(own_cluster.url, namespace="svc", replica_ack_timeout=0.2)
    cache: Cache = ConnectionCache(60, clock=clock)
    cache.use_backend(backend)
    name = _names(backend, ["user:1"])[0]
    master = own_cluster.master_of(name)
    own_cluster.kill(own_cluster.replica_of(master))  # silently: the cluster needs 1 s to tell
    cache.set("user:1", "v")
    with pytest.raises(NotReplicated, match=f"127.0.0.1:{master} acknowledged"):
        cache.invalidate("user:1")
    assert cache.get("user:1") is None  # gone from the master; only its durability is unknown
    # Opted into failing open, the same is an error counted and nothing removed.
    lenient = RedisBackend(
        backend.client, namespace="svc", replica_ack_timeout=0.2, fail_open_invalidations=True
    )
    other: Cache = ConnectionCache(60, clock=clock)
    other.use_backend(lenient)
    other.set("user:1", "v")
    assert other.invalidate("user:1") is False
    assert other.stats.errors == 1
    # Once the cluster marks the replica failed, a fresh topology has no replica to
    # wait for: invalidations go through again, and nothing else ever stopped.
    own_cluster.wait_until_serving()
    deadline = time.monotonic() + 15
    while True:
        cache.set("user:1", "v")
        try:
            assert cache.invalidate("user:1") is True
            break
        except NotReplicated:
            assert time.monotonic() < deadline, "the lost replica was never noticed"
            time.sleep(0.2)
    backend.close()


# -- a failover -------------------------------------------------------------------------------


class Hammer:
    """Threads (and one event loop) storing groups of keys and invalidating them,
    each group by ``invalidate``, ``invalidate_many``, ``invalidate_prefix`` or
    ``invalidate_tag`` in turn, retrying an invalidation that raised until one
    returns. ``done`` holds every key whose invalidation returned; nothing
    writes a key after that."""

    def __init__(self, cache: Cache, threads: int = 4) -> None:
        self.cache = cache
        self.done: list[str] = []
        self.raised: Counter[str] = Counter()
        self.unfinished: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(f"s{n}",)) for n in range(threads)
        ]
        self._threads.append(threading.Thread(target=lambda: asyncio.run(self._awork("a"))))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _group(self, worker: str, i: int) -> tuple[str, list[str], str]:
        group = f"g:{worker}:{i}:"
        return group, [group + str(j) for j in range(3)], f"t:{worker}:{i}"

    def _invalidation(self, i: int, group: str, keys: list[str], tag: str) -> Callable[[], Any]:
        cache = self.cache
        return [
            lambda: [cache.invalidate(key) for key in keys],
            lambda: cache.invalidate_many(keys),
            lambda: cache.invalidate_prefix(group),
            lambda: cache.invalidate_tag(tag),
        ][i % 4]

    def _work(self, worker: str) -> None:
        for i in itertools.count():
            if self._stop.is_set():
                return
            group, keys, tag = self._group(worker, i)
            self.cache.set_many(dict.fromkeys(keys, i), tags=(tag,))  # fails open
            self.cache.get(keys[0])
            self._until_done(keys, self._invalidation(i, group, keys, tag))

    async def _awork(self, worker: str) -> None:
        cache = self.cache
        for i in itertools.count():
            if self._stop.is_set():
                return
            group, keys, tag = self._group(worker, i)
            await cache.aset_many(dict.fromkeys(keys, i), tags=(tag,))
            await cache.aget(keys[0])
            deadline = time.monotonic() + 30
            while True:
                try:
                    if i % 2:
                        await cache.ainvalidate_prefix(group)
                    else:
                        await cache.ainvalidate_tag(tag)
                    self._finished(keys)
                    break
                except Exception as error:
                    self._failed(keys, error, deadline)
                    if keys[0] in self.unfinished:
                        break
                    await asyncio.sleep(0.05)

    def _until_done(self, keys: list[str], invalidate: Callable[[], Any]) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                invalidate()
                self._finished(keys)
                return
            except Exception as error:
                self._failed(keys, error, deadline)
                if keys[0] in self.unfinished:
                    return
                time.sleep(0.05)

    def _finished(self, keys: list[str]) -> None:
        with self._lock:
            self.done += keys

    def _failed(self, keys: list[str], error: Exception, deadline: float) -> None:
        with self._lock:
            self.raised[type(error).__name__] += 1
            if time.monotonic() > deadline:
                self.unfinished += keys


@pytest.mark.slow
def test_a_master_failover_while_the_cache_is_hammered_loses_no_invalidation(
    own_cluster: LocalCluster,
) -> None:
    backend = RedisBackend.from_url(own_cluster.url, namespace="svc", socket_timeout=0.5)
    cache: Cache = ConnectionCache(300)
    cache.use_backend(backend)
    hammer = Hammer(cache)
    hammer.start()
    try:
        time.sleep(1.0)
        before = len(hammer.done)
        victim = own_cluster.master_of(backend.layout.buckets[0].prefix)
        own_cluster.kill(victim)  # SIGKILL: no goodbye, nothing saved
        own_cluster.wait_until_serving()  # its replica took over its slots
        time.sleep(1.0)
    finally:
        hammer.stop()
    assert victim not in own_cluster.primaries()
    assert hammer.unfinished == []
    assert len(hammer.done) > before > 0
    assert sum(hammer.raised.values()) > 0, "no invalidation met the failover"
    assert cache.stats.errors > 0  # reads and writes that met it failed open
    # After an invalidation returned, no node serves the key: not the new
    # master, not a replica.
    assert _entry_on_any_node(own_cluster, _names(backend, hammer.done)) == []
    assert cache.get_many(hammer.done) == {}
    backend.close()


# -- a slot on the move -----------------------------------------------------------------------


@pytest.mark.slow
def test_a_slot_moving_to_another_master_loses_no_invalidation(
    cache: Cache, backend: RedisBackend, redis_cluster: LocalCluster
) -> None:
    bucket = backend.layout.bucket("user:0")
    keys = [k for k in (f"user:{i}" for i in range(3000)) if backend.layout.bucket(k) is bucket]
    cache.set_many(dict.fromkeys(keys, 1), tags=("moving",))
    cache.invalidate_prefix("nothing:")  # the bucket's index known complete
    slot = redis.crc.key_slot(bucket.prefix.encode())
    source = redis_cluster.master_of(bucket.prefix)
    target = next(port for port in redis_cluster.primaries() if port != source)
    done: list[str] = []
    unfinished: list[str] = []
    raised: Counter[str] = Counter()
    stop = threading.Event()

    def churn() -> None:
        # Keys of the moving bucket, each stored once and invalidated until a call
        # returns; none is written again after that.
        fresh = (f"{key}:{n}" for n in itertools.count() for key in keys)
        for key in fresh:
            if stop.is_set():
                return
            if backend.layout.bucket(key) is not bucket:
                continue
            cache.set(key, 2, tags=("moving",))
            deadline = time.monotonic() + 20
            while True:
                try:
                    cache.invalidate(key)
                    done.append(key)
                    break
                except Exception as error:  # TRYAGAIN, a script meeting a moved key
                    raised[type(error).__name__] += 1
                    if time.monotonic() > deadline:
                        unfinished.append(key)
                        return
                    time.sleep(0.01)

    worker = threading.Thread(target=churn)
    worker.start()
    try:
        redis_cluster.move_slot(slot, source, target)
        time.sleep(0.2)  # a few calls meet MOVED
    finally:
        stop.set()
        worker.join(30)
    try:
        assert redis_cluster.master_of(bucket.prefix) == target
        assert unfinished == []
        assert done
        assert _entry_on_any_node(redis_cluster, _names(backend, done)) == []
        # The bucket's index and tag set moved with it: both still find every entry.
        assert cache.invalidate_prefix("user:") == len(keys)
        cache.set_many(dict.fromkeys(keys, 1), tags=("moving",))
        assert cache.invalidate_tag("moving") == len(keys)
        assert _entry_on_any_node(redis_cluster, _names(backend, keys)) == []
    finally:
        redis_cluster.move_slot(slot, target, source)  # the session's cluster as it was
