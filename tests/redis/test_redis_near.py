"""The near cache: memory-speed hits on a shared Redis, kept coherent by the server.

Every test runs on a real redis-server; changes "from another process" come
from real subprocesses where the claim is about processes, and from a
second cache with connections of its own elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from pytest_conncache import ConnectionCache, RedisBackend
from pytest_conncache._codecs import Codec
from pytest_conncache._near import NearStore
from pytest_conncache._redis_store import RedisStore
from pytest_conncache._store import Entry, Store
from tests.redis.fakes import FakeClock
from tests.redis.other_process import run_other_process
from tests.redis_server import RedisServer, command

Cache = ConnectionCache[Any]


def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``check()`` is true (an invalidation travels), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {check}")
        time.sleep(0.005)


def near_backend(url: str, namespace: str, **options: Any) -> RedisBackend:
    return RedisBackend.from_url(url, namespace=namespace, near_cache=True, **options)


@pytest.fixture
def near(redis_server: RedisServer, namespace: str) -> Iterator[Cache]:
    """A wall-clock cache on a near backend (what a service runs)."""
    backend = near_backend(redis_server.url, namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    yield cache
    cache.use_backend(None)
    backend.drop_namespace()
    backend.close()


@pytest.fixture
def elsewhere(redis_server: RedisServer, namespace: str) -> Iterator[Cache]:
    """Another cache on the same namespace, with connections of its own."""
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    yield cache
    backend.close()


def warm(cache: Cache, key: str) -> Any:
    """Read ``key`` until the near copy answers (a first read keeps it)."""
    value = None
    for _ in range(100):
        before = cache.stats.near_hits
        value = cache.get(key)
        if cache.stats.near_hits > before:
            return value
        time.sleep(0.002)  # a message about this process's own write may still come
    raise AssertionError(f"{key!r} never became a near hit")


def near_hit(cache: Cache, key: str) -> bool:
    """Whether a read of ``key`` is answered by the near copy."""
    before = cache.stats.near_hits
    cache.get(key)
    return cache.stats.near_hits > before


def get_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


# -- hits --------------------------------------------------------------------------------


def test_a_near_hit_costs_no_round_trip(near: Cache, redis_server: RedisServer) -> None:
    near.set("user-connections:abc", {"ids": [1, 2]})
    assert warm(near, "user-connections:abc") == {"ids": [1, 2]}
    client: redis.Redis = redis.Redis.from_url(redis_server.url)
    before, hits, near_hits = get_calls(client), near.stats.hits, near.stats.near_hits

    for _ in range(100):
        assert near.get("user-connections:abc") == {"ids": [1, 2]}

    assert get_calls(client) == before
    assert near.stats.hits == hits + 100
    assert near.stats.near_hits == near_hits + 100
    client.close()


def test_get_or_set_and_get_many_hit_the_copy_too(near: Cache) -> None:
    near.set("a", 1)
    near.set("b", 2)
    warm(near, "a")
    warm(near, "b")
    before = near.stats.near_hits

    assert near.get_or_set("a", lambda: 0) == 1
    assert near.get_many(["a", "b", "missing"]) == {"a": 1, "b": 2}

    assert near.stats.near_hits == before + 3
    assert near.stats.misses == 1


def test_async_reads_hit_the_copy(near: Cache) -> None:
    import asyncio

    async def empty_list() -> list[int]:
        return []

    async def scenario() -> None:
        await near.aset("k", [1])
        for _ in range(100):
            before = near.stats.near_hits
            await near.aget("k")
            if near.stats.near_hits > before:
                break
            await asyncio.sleep(0.002)
        before = near.stats.near_hits
        assert await near.aget("k") == [1]
        assert await near.aget_or_set("k", empty_list) == [1]
        assert near.stats.near_hits == before + 2
        await near.aset("k", [2])
        assert await near.aget("k") == [2]  # read your own write at once

    asyncio.run(scenario())


def test_a_process_reads_its_own_writes_at_once(near: Cache) -> None:
    near.set("k", "old")
    warm(near, "k")

    near.set("k", "new")
    assert near.get("k") == "new"
    near.invalidate("k")
    assert near.get("k") is None
    near.set("tagged", 1, tags=("user:1",))
    warm(near, "tagged")
    near.invalidate_tag("user:1")
    assert near.get("tagged") is None


def test_each_value_type_reads_through_its_own_codec(
    redis_server: RedisServer, namespace: str
) -> None:
    pytest.importorskip("pydantic")
    backend = near_backend(redis_server.url, namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    try:
        cache.set("point", (1, 2), value_type=tuple[int, int])
        assert cache.get("point", value_type=tuple[int, int]) == (1, 2)
        assert cache.get("point", value_type=tuple[int, int]) == (1, 2)
        assert cache.get("point") == [1, 2]  # the plain serializer: not the copy's tuple
    finally:
        cache.use_backend(None)
        backend.drop_namespace()
        backend.close()


def test_near_max_entries_bounds_the_copy(redis_server: RedisServer, namespace: str) -> None:
    backend = near_backend(redis_server.url, namespace, near_max_entries=3)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    try:
        cache.set_many({f"k{n}": n for n in range(4)})
        for n in range(4):
            warm(cache, f"k{n}")
        assert "near_cache=3/3" in repr(cache)
        assert [near_hit(cache, f"k{n}") for n in (1, 2, 3)] == [True, True, True]
        assert not near_hit(cache, "k0")  # kept first, it made room for k3
    finally:
        cache.use_backend(None)
        backend.drop_namespace()
        backend.close()


def test_expiry_follows_the_caches_clock(redis_server: RedisServer, namespace: str) -> None:
    backend = near_backend(redis_server.url, namespace)
    clock = FakeClock(1_000.0)
    cache: Cache = ConnectionCache(10, clock=clock)
    cache.use_backend(backend)
    try:
        cache.set("session:1", "token")
        warm(cache, "session:1")
        clock.advance(9.9)
        assert cache.get("session:1") == "token"
        clock.advance(0.1)
        assert cache.get("session:1") is None
        assert cache.stats.expirations == 1
    finally:
        cache.use_backend(None)
        backend.drop_namespace()
        backend.close()


# -- coherence: any process's change evicts the copy ---------------------------------------


CHANGES = [
    pytest.param("cache.set('user-record:t:1', 'new')", "new", id="set"),
    pytest.param("cache.invalidate('user-record:t:1')", None, id="invalidate"),
    pytest.param("cache.invalidate_many(['user-record:t:1'])", None, id="invalidate_many"),
    pytest.param("cache.invalidate_prefix('user-record:')", None, id="invalidate_prefix"),
    pytest.param("cache.invalidate_pattern('t:1$')", None, id="invalidate_pattern"),
    pytest.param("cache.invalidate_tag('user:t')", None, id="invalidate_tag"),
    pytest.param("cache.clear()", None, id="clear"),
]


@pytest.mark.parametrize(("change", "after"), CHANGES)
def test_a_change_in_another_process_evicts_the_copy(
    near: Cache, redis_server: RedisServer, namespace: str, change: str, after: Any
) -> None:
    near.set("user-record:t:1", "old", tags=("user:t",))
    assert warm(near, "user-record:t:1") == "old"

    run_other_process(redis_server.url, namespace, change)

    eventually(lambda: near.get("user-record:t:1") == after)


def test_an_expiry_on_the_server_evicts_the_copy(
    redis_server: RedisServer, namespace: str, elsewhere: Cache
) -> None:
    # This cache's clock stands still, so only the server can tell it expired.
    backend = near_backend(redis_server.url, namespace)
    cache: Cache = ConnectionCache(60, clock=FakeClock(time.time()))
    cache.use_backend(backend)
    try:
        cache.set("short", 1, ttl=0.2)
        warm(cache, "short")
        eventually(lambda: cache.get("short") is None)
    finally:
        cache.use_backend(None)
        backend.close()


def test_a_flush_of_the_database_empties_the_copy(near: Cache, redis_server: RedisServer) -> None:
    near.set("k", 1)
    warm(near, "k")
    client: redis.Redis = redis.Redis.from_url(redis_server.url)

    client.flushdb()

    eventually(lambda: near.get("k") is None)
    client.close()


def test_a_change_through_another_client_evicts_within_a_bound(
    near: Cache, elsewhere: Cache
) -> None:
    worst = 0.0
    for version in range(50):
        elsewhere.set("counter", version)
        start = time.monotonic()
        eventually(lambda v=version: near.get("counter") == v)  # type: ignore[misc]
        worst = max(worst, time.monotonic() - start)
        warm(near, "counter")
    assert worst < 1.0


# -- safety: never serve what the channel could not vouch for -----------------------------


def test_while_the_channel_is_down_reads_go_to_the_server(
    own_redis_server: RedisServer, namespace: str
) -> None:
    admin: redis.Redis = redis.Redis.from_url(own_redis_server.url)
    command(admin, "ACL", "SETUSER", "admin", "on", ">secret", "~*", "&*", "+@all")
    admin.close()
    admin = redis.Redis.from_url(own_redis_server.url, username="admin", password="secret")
    backend = near_backend(own_redis_server.url, namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    writer: Cache = ConnectionCache.from_url(own_redis_server.url, namespace=namespace)
    try:
        cache.set("k", "old")
        warm(cache, "k")
        # The channel's connection is killed and may not subscribe again.
        command(admin, "ACL", "SETUSER", "default", "-subscribe")
        command(admin, "CLIENT", "KILL", "TYPE", "pubsub")
        eventually(lambda: not near_hit(cache, "k"))
        before = cache.stats.near_hits
        writer.set("k", "new")  # no message can reach this process

        assert cache.get("k") == "new"
        assert cache.get("k") == "new"
        assert cache.stats.near_hits == before

        command(admin, "ACL", "SETUSER", "default", "+subscribe")
        eventually(lambda: warm(cache, "k") == "new")
        writer.set("k", "newer")
        eventually(lambda: cache.get("k") == "newer")
    finally:
        cache.use_backend(None)
        writer.use_backend(None)
        backend.close()
        admin.close()


def test_killing_the_channel_connection_empties_the_copy(
    near: Cache, redis_server: RedisServer, elsewhere: Cache
) -> None:
    near.set("k", "old")
    warm(near, "k")
    client: redis.Redis = redis.Redis.from_url(redis_server.url)
    killed = command(client, "CLIENT", "KILL", "TYPE", "pubsub")
    assert killed >= 1

    # Gone from the copy: the next read asks the server, even before the channel is back.
    eventually(lambda: near.get("k") == "old")
    elsewhere.set("k", "new")
    eventually(lambda: near.get("k") == "new")
    client.close()


def test_killing_a_data_connection_loses_no_invalidation(
    near: Cache, redis_server: RedisServer, elsewhere: Cache
) -> None:
    # Tracking lives on the channel's own connection (redirected to itself):
    # the data connections carry no tracking state to lose.
    near.set("k", "old")
    warm(near, "k")
    client: redis.Redis = redis.Redis.from_url(redis_server.url)
    command(client, "CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")

    elsewhere.set("k", "new")

    eventually(lambda: near.get("k") == "new")
    client.close()


def test_a_server_restart_empties_the_copy(own_redis_server: RedisServer, namespace: str) -> None:
    backend = near_backend(own_redis_server.url, namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    try:
        cache.set("k", "before the restart")
        warm(cache, "k")

        own_redis_server.stop()
        own_redis_server.start()

        assert cache.get("k") is None  # the restarted server has nothing
        cache.set("k", "after")
        assert warm(cache, "k") == "after"
    finally:
        cache.use_backend(None)
        backend.close()


class ReadThenWait:
    """A Redis store whose lookups of ``key``, once read, wait for ``release``."""

    def __init__(self, inner: RedisStore, key: str) -> None:
        self.inner = inner
        self.key = key
        self.read = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def lookup(self, key: str, codec: Codec | None = None) -> Entry | None:
        entry = self.inner.lookup(key, codec)
        if key == self.key:
            self.read.set()
            assert self.release.wait(10)
        return entry


class OneStore:
    """A backend that opens the store it is given."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open_store(self, *, max_entries: int | None, count_near_hit: Any = None) -> Store:
        return self.store

    def close(self) -> None:
        self.store.close()


def test_an_invalidation_during_a_read_wins(
    redis_server: RedisServer, namespace: str, elsewhere: Cache
) -> None:
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace)
    slow = ReadThenWait(RedisStore(backend).open(), "k")
    hits: list[int] = []
    store = NearStore(
        slow,
        max_entries=100,
        count_near_hit=lambda: hits.append(1),
        connect=backend.channel_connection,
        prefix=backend.prefix,
        where="test",
    ).open()
    cache: Cache = ConnectionCache(60)
    cache.use_backend(OneStore(store))
    try:
        elsewhere.set("k", "old")
        elsewhere.set("canary", 1)
        eventually(lambda: (len(hits), cache.get("canary"))[0] < len(hits))  # a near hit
        results: list[Any] = []
        reader = threading.Thread(target=lambda: results.append(cache.get("k")))
        reader.start()
        assert slow.read.wait(10)  # the read has the old value in hand...
        elsewhere.set("k", "new")  # ...when another process changes the key
        elsewhere.set("canary", 2)  # messages arrive in order: this one comes after
        eventually(lambda: cache.get("canary") == 2)
        slow.release.set()
        reader.join(10)

        assert results == ["old"]  # the read itself answers what it read
        assert cache.get("k") == "new"  # but the copy did not keep it
        assert hits  # the canary was a near hit: the copy was in use
    finally:
        slow.release.set()
        cache.use_backend(None)
        backend.drop_namespace()
        backend.close()


# -- configuration -------------------------------------------------------------------------


def test_the_url_can_turn_it_on(redis_server: RedisServer, namespace: str) -> None:
    cache: Cache = ConnectionCache.from_url(
        f"{redis_server.url}?near_cache=1&near_max_entries=5&socket_timeout=2",
        namespace=namespace,
    )
    try:
        assert "near_cache=0/5" in repr(cache)
        cache.set("k", 1)
        warm(cache, "k")
    finally:
        backend = cache.backend
        cache.use_backend(None)
        assert isinstance(backend, RedisBackend)
        backend.drop_namespace()
        backend.close()


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"near_cache": "yes"}, TypeError, "near_cache must be True or False, got 'yes'"),
        (
            {"near_cache": True, "near_max_entries": 0},
            ValueError,
            "near_max_entries must be a positive int, got 0",
        ),
        ({"near_max_entries": 10}, ValueError, "near_max_entries needs near_cache=True"),
    ],
)
def test_bad_options_are_refused(
    redis_server: RedisServer, options: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        RedisBackend.from_url(redis_server.url, namespace="x", **options)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("near_cache=maybe", "near_cache in the URL must be 1 or 0, got 'maybe'"),
        ("near_cache=1&near_max_entries=lots", "near_max_entries in the URL must be an int"),
    ],
)
def test_bad_url_options_are_refused(redis_server: RedisServer, query: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RedisBackend.from_url(f"{redis_server.url}?{query}", namespace="x")


def test_with_namespace_keeps_the_near_cache(near: Cache, redis_server: RedisServer) -> None:
    backend = near.backend
    assert isinstance(backend, RedisBackend)
    other = backend.with_namespace("another")
    assert other.near_cache is True


# -- the channel's life --------------------------------------------------------------------


def channel_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("conncache-near-")]


def test_closing_the_backend_closes_its_channels(redis_server: RedisServer, namespace: str) -> None:
    before = len(channel_threads())
    backend = near_backend(redis_server.url, namespace)
    caches: list[Cache] = [ConnectionCache(60) for _ in range(3)]
    for cache in caches:
        cache.use_backend(backend.with_namespace(namespace))
    assert len(channel_threads()) == before + 3

    backend.close()

    assert len(channel_threads()) == before
    assert not near_hit(caches[0], "anything")


def test_a_dropped_cache_ends_its_channel(redis_server: RedisServer, namespace: str) -> None:
    import gc

    before = len(channel_threads())
    backend = near_backend(redis_server.url, namespace)
    cache: Cache = ConnectionCache(60)
    cache.use_backend(backend)
    assert len(channel_threads()) == before + 1

    del cache
    gc.collect()

    eventually(lambda: len(channel_threads()) == before)
    backend.close()


def test_each_outage_of_the_channel_is_short_and_logged_once(
    near: Cache, redis_server: RedisServer, elsewhere: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    client: redis.Redis = redis.Redis.from_url(redis_server.url)
    near.set("k", 0)
    warm(near, "k")
    for round_ in range(1, 6):
        command(client, "CLIENT", "KILL", "TYPE", "pubsub")
        start = time.monotonic()
        # Back within a moment each time: the retry delay starts over after a recovery.
        elsewhere.set("k", round_)
        eventually(lambda r=round_: warm(near, "k") == r, timeout=2.0)  # type: ignore[misc]
        assert time.monotonic() - start < 1.0
    client.close()
    downs = [r for r in caplog.records if "invalidation channel down" in r.getMessage()]
    backs = [r for r in caplog.records if "invalidation channel back" in r.getMessage()]
    assert len(downs) == 5
    assert len(backs) == 5


def test_a_channel_without_permission_refuses_to_start(
    own_redis_server: RedisServer, namespace: str
) -> None:
    admin: redis.Redis = redis.Redis.from_url(own_redis_server.url)
    command(admin, "ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-client")
    url = own_redis_server.url.replace("redis://", "redis://app:pw@")

    with pytest.raises(redis.ResponseError, match="near cache: the invalidation channel cannot"):
        ConnectionCache.from_url(f"{url}?near_cache=1", namespace=namespace)

    admin.close()


def test_the_repr_says_near_cache(near: Cache) -> None:
    assert repr(near.backend).endswith(" near_cache>")


@pytest.mark.parametrize(
    ("url_query", "options", "message"),
    [
        ("near_cache=1&near_cache=0", {}, "near_cache appears twice in the URL"),
        ("near_cache=1", {"near_cache": False}, "near_cache is given twice, differently"),
        ("near_max_entries=5", {}, "near_max_entries in the URL needs the near cache on"),
    ],
)
def test_conflicting_url_options_are_refused(
    redis_server: RedisServer, url_query: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RedisBackend.from_url(f"{redis_server.url}?{url_query}", namespace="x", **options)
