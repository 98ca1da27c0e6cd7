"""What only the Redis backend does: namespaces, server expiry, batches, construction.

The SPEC's behaviours shared with memory are the contract tests in ``tests/``,
which run on both backends through the ``cache`` fixture.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import pytest
import redis
import time_machine

from pytest_conncache import (
    ConnectionCache,
    RedisBackend,
)
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer

Cache = ConnectionCache[Any]


def test_keys_live_under_the_namespace(cache: Cache, backend: RedisBackend) -> None:
    cache.set("connection:7", 1)
    assert backend.client.exists(f"{backend.namespace}:connection:7") == 1


def test_an_infinite_ttl_never_expires_and_sets_no_server_expiry(
    cache: Cache, clock: FakeClock, backend: RedisBackend
) -> None:
    cache.set("k", "v", ttl=math.inf)
    clock.advance(1e12)
    assert cache.get("k") == "v"
    assert cache.ttl_remaining("k") == math.inf
    assert backend.client.pttl(f"{backend.namespace}:k") == -1


def test_the_server_expiry_follows_the_ttl_rounded_up(cache: Cache, backend: RedisBackend) -> None:
    from pytest_conncache._envelope import server_px

    assert server_px(1.0001) == 1001
    assert server_px(0.0000001) == 1
    cache.set("k", "v", ttl=1.0001)
    pttl = backend.client.pttl(f"{backend.namespace}:k")
    assert 900 < pttl <= 1001


def test_invalidate_pattern_walks_the_namespace_in_batches(
    redis_server: RedisServer, namespace: str, clock: FakeClock
) -> None:
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace, scan_batch=7)
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)
    try:
        for i in range(100):
            cache.set(f"k:{i}", i)
        assert cache.invalidate_pattern(r"^k:\d*[05]$") == 20
        assert cache.size() == 80
    finally:
        backend.drop_namespace()
        backend.client.close()


def test_invalidate_prefix_treats_glob_characters_literally(cache: Cache) -> None:
    for key in ("a*", "a*b", "ab", "a?", "a[b]c", "ab]c", "a\\x", "ax"):
        cache.set(key, 1)
    assert cache.invalidate_prefix("a*") == 2
    assert cache.invalidate_prefix("a?") == 1
    assert cache.invalidate_prefix("a[b]") == 1
    assert cache.invalidate_prefix("a\\") == 1
    assert cache.keys() == ["ab", "ab]c", "ax"]


def test_other_data_in_the_database_survives(cache: Cache, backend: RedisBackend) -> None:
    client = backend.client
    client.set("unrelated", b"1")
    client.set(f"{backend.namespace}-other:k", b"1")
    client.set(f"other:{backend.namespace}:k", b"1")
    cache.set("k", 1)
    cache.set("k2", 2)
    assert cache.keys() == ["k", "k2"]
    assert cache.size() == 2
    assert cache.invalidate_pattern(".") == 2
    cache.set("k", 1)
    assert cache.invalidate_prefix("") == 1
    cache.set("k", 1)
    cache.clear()
    backend.drop_namespace()
    assert (
        client.exists("unrelated", f"{backend.namespace}-other:k", f"other:{backend.namespace}:k")
        == 3
    )
    client.delete("unrelated", f"{backend.namespace}-other:k", f"other:{backend.namespace}:k")


def test_two_namespaces_do_not_see_each_other(
    redis_server: RedisServer, cache: Cache, clock: FakeClock, backend: RedisBackend
) -> None:
    other: Cache = ConnectionCache(clock=clock)
    other.use_backend(backend.with_namespace(backend.namespace + "-b"))
    try:
        other.set("k", "other")
        cache.set("k", "mine")
        cache.clear()
        assert other.get("k") == "other"
    finally:
        assert other.backend is not None
        other.backend.drop_namespace()  # type: ignore[attr-defined]


def test_bad_arguments_raise_before_touching_redis(cache: Cache) -> None:
    with pytest.raises(TypeError, match="key"):
        cache.set(1, "v")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl"):
        cache.set("k", "v", ttl=0)
    with pytest.raises(TypeError, match="key"):
        cache.get(b"k")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="prefix"):
        cache.invalidate_prefix(None)  # type: ignore[arg-type]
    assert cache.keys() == []


def test_max_entries_is_refused_on_redis(backend: RedisBackend) -> None:
    with pytest.raises(ValueError, match="maxmemory"):
        ConnectionCache(max_entries=10).use_backend(backend)


def test_a_client_that_decodes_responses_is_refused(redis_server: RedisServer) -> None:
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    with pytest.raises(ValueError, match="decode_responses"):
        RedisBackend(client, namespace="x")
    client.close()


@pytest.mark.parametrize("namespace", ["", "a#b"])
def test_a_bad_namespace_is_refused(redis_server: RedisServer, namespace: str) -> None:
    with pytest.raises(ValueError, match="namespace"):
        RedisBackend.from_url(redis_server.url, namespace=namespace)


def test_from_url_builds_a_redis_backed_cache(redis_server: RedisServer, namespace: str) -> None:
    cache: Cache = ConnectionCache.from_url(redis_server.url, namespace=namespace, default_ttl=60)
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    try:
        cache.set("k", 1)
        assert cache.get("k") == 1
        assert cache.ttl_remaining("k") == pytest.approx(60, abs=1)
        assert "redis" in repr(cache)
    finally:
        backend.drop_namespace()
        backend.client.close()


def test_from_url_asks_and_finds_one_server(redis_server: RedisServer, namespace: str) -> None:
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace)
    try:
        assert not backend.cluster
        assert type(backend.client) is redis.Redis
        assert backend.prefix == namespace + ":"
        assert len(backend.layout.buckets) == 1
    finally:
        backend.close()


def test_cluster_true_on_one_server_is_refused(redis_server: RedisServer) -> None:
    with pytest.raises(ValueError, match=r"cluster=True, but redis://.* is not a node of a Redis"):
        RedisBackend.from_url(redis_server.url, namespace="x", cluster=True)


def test_a_bad_cluster_argument_is_refused(redis_server: RedisServer) -> None:
    with pytest.raises(TypeError, match="cluster must be True, False or None, got 1"):
        RedisBackend.from_url(redis_server.url, namespace="x", cluster=1)  # type: ignore[arg-type]


def test_a_server_that_does_not_answer_is_taken_for_one_server_with_a_warning(
    own_redis_server: RedisServer, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    own_redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="pytest_conncache.redis"):
        backend = RedisBackend.from_url(own_redis_server.url, namespace="svc")
    assert not backend.cluster
    assert "cannot tell whether it is a node of a Redis Cluster" in caplog.text
    assert "cluster=True or cluster=False" in caplog.text
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)  # as at a service's start-up: no reason to fail
    own_redis_server.start()
    try:
        deadline = time.monotonic() + 5  # the outage ends a second after its last fault
        while cache.get("k") != 1 and time.monotonic() < deadline:
            cache.set("k", 1)
            time.sleep(0.1)
        assert cache.get("k") == 1
    finally:
        backend.drop_namespace()
        backend.close()


def test_cluster_false_skips_the_question(redis_server: RedisServer, namespace: str) -> None:
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace, cluster=False)
    try:
        assert not backend.cluster
        stats: dict[str, Any] = backend.client.info("commandstats")
        hellos = int(stats.get("cmdstat_hello", {}).get("calls", 0))
        RedisBackend.from_url(redis_server.url, namespace=namespace, cluster=False).close()
        stats = backend.client.info("commandstats")
        assert int(stats.get("cmdstat_hello", {}).get("calls", 0)) == hellos
    finally:
        backend.close()


def test_use_backend_switches_an_existing_cache_and_back(
    backend: RedisBackend, clock: FakeClock
) -> None:
    cache: Cache = ConnectionCache(clock=clock)
    cache.set("memory-only", 1)
    cache.use_backend(backend)
    assert cache.get("memory-only") is None
    cache.set("k", "on redis")
    assert backend.client.exists(f"{backend.namespace}:k")
    cache.use_backend(None)
    assert cache.backend is None
    assert cache.get("k") is None
    assert cache.get("memory-only") is None
    cache.set("m", 1)
    assert cache.keys() == ["m"]
    assert not backend.client.exists(f"{backend.namespace}:m")


def test_the_default_clock_on_redis_is_wall_time_and_time_machine_moves_it(
    backend: RedisBackend,
) -> None:
    cache: Cache = ConnectionCache(10)
    cache.use_backend(backend)
    with time_machine.travel(1_000_000.0, tick=False) as traveller:
        assert cache.now() == 1_000_000.0
        cache.set("k", 1)
        traveller.shift(9.5)
        assert cache.get("k") == 1
        traveller.shift(0.5)
        assert cache.get("k") is None


def test_the_wall_clock_holder_can_be_redirected(backend: RedisBackend) -> None:
    from pytest_conncache._clock import default_wall_clock

    cache: Cache = ConnectionCache(10)
    cache.use_backend(backend)
    fake = FakeClock(50.0)
    default_wall_clock.redirect(fake)
    try:
        cache.set("k", 1)
        fake.advance(10)
        assert cache.get("k") is None
    finally:
        default_wall_clock.restore()
    assert not default_wall_clock.redirected


def test_importing_the_package_does_not_import_redis() -> None:
    import subprocess
    import sys

    code = (
        "import sys, pytest_conncache\n"
        "assert 'redis' not in sys.modules, 'redis imported'\n"
        "pytest_conncache.RedisBackend\n"
        "assert 'redis' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
