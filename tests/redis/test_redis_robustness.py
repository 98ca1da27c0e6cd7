"""A real redis-server in bad shape: evicted indexes, bad credentials, foreign bytes, full memory.

Each test starts the server it needs (``RedisServer`` with ``extra_args``)
or writes under a fresh namespace of the session's server, and checks what
the public API does about it: nothing stale is served, configuration
errors raise, unreadable entries are misses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import redis
import redis.cluster

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer

Cache = ConnectionCache[Any]
OpenCache = Callable[[str], Cache]

PASSWORD = "secret"


# -- servers and caches ------------------------------------------------------------------


def _server(binary: str, *extra_args: str) -> Iterator[RedisServer]:
    with RedisServer(binary, extra_args=extra_args) as server:
        yield server


@pytest.fixture
def auth_server(redis_binary: str) -> Iterator[RedisServer]:
    """A server whose default user needs ``PASSWORD``."""
    yield from _server(redis_binary, "--requirepass", PASSWORD)


@pytest.fixture
def lru_server(redis_binary: str) -> Iterator[RedisServer]:
    """A small server that evicts any key, least recently used first."""
    yield from _server(redis_binary, "--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru")


@pytest.fixture
def full_server(redis_binary: str) -> Iterator[RedisServer]:
    """A small server that refuses writes once its memory is used up."""
    yield from _server(redis_binary, "--maxmemory", "2mb", "--maxmemory-policy", "noeviction")


@pytest.fixture
def raw_client() -> Iterator[Callable[..., redis.Redis]]:
    """Opens plain clients (``raw_client(server, password=...)``), closed after the test."""
    opened: list[redis.Redis] = []

    def open_client(server: RedisServer, **options: Any) -> redis.Redis:
        client = redis.Redis(host="127.0.0.1", port=server.port, **options)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


@pytest.fixture
def open_cache(clock: FakeClock) -> Iterator[OpenCache]:
    """Opens a ttl-10 cache on ``clock`` on a Redis URL (namespace ``svc``); closed after."""
    backends: list[RedisBackend] = []

    def open_(url: str) -> Cache:
        backend = RedisBackend.from_url(url, namespace="svc")
        backends.append(backend)
        cache: Cache = ConnectionCache(10, clock=clock)
        cache.use_backend(backend)
        return cache

    yield open_
    for backend in backends:
        backend.close()


def _never() -> Any:
    raise AssertionError("the factory must not run")


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


# -- 1. the index behind invalidate_prefix, evicted ------------------------------------------


def _index_members(backend: RedisBackend) -> set[bytes]:
    return set(cast("list[bytes]", backend.client.zrange(backend.index_key, 0, -1)))


def _scans(client: redis.Redis | redis.cluster.RedisCluster) -> int:
    """How many SCAN commands the server has run so far."""
    stats: dict[str, Any] = client.info("commandstats")
    return int(stats.get("cmdstat_scan", {}).get("calls", 0))


def test_invalidate_prefix_removes_every_entry_after_the_index_was_evicted(
    cache: Cache, backend: RedisBackend
) -> None:
    cache.set_many({f"user:{i}": i for i in range(1, 51)})
    cache.set_many({f"other:{i}": i for i in range(1, 51)})
    backend.client.delete(backend.index_key)  # what an eviction does
    cache.set_many({f"user:{i}": i for i in range(51, 56)})  # recreate it, incomplete

    assert cache.invalidate_prefix("user:") == 55
    assert cache.get_many([f"user:{i}" for i in range(1, 56)]) == {}
    assert cache.get_many([f"other:{i}" for i in range(1, 51)]) == {
        f"other:{i}": i for i in range(1, 51)
    }
    # The removal rebuilt the index: complete again, and marked so.
    assert _index_members(backend) == {b"m"} | {f"kother:{i}".encode() for i in range(1, 51)}


def test_invalidate_prefix_trusts_the_index_it_rebuilt(cache: Cache, backend: RedisBackend) -> None:
    cache.set_many({f"user:{i}": i for i in range(1, 51)})
    cache.set_many({f"other:{i}": i for i in range(1, 51)})
    backend.client.delete(backend.index_key)
    cache.set("user:51", 51)
    assert cache.invalidate_prefix("user:") == 51  # by SCAN, rebuilding the index

    cache.set_many({f"user:{i}": i for i in range(100, 110)})
    scans = _scans(backend.client)
    assert cache.invalidate_prefix("user:") == 10
    assert cache.invalidate_prefix("other:") == 50
    assert _scans(backend.client) == scans  # both removals read the index alone
    assert b"m" in _index_members(backend)
    assert cache.size() == 0
    assert cache.stats.invalidations == 111


def test_invalidate_prefix_leaves_no_live_entry_when_redis_evicts_under_allkeys_lru(
    lru_server: RedisServer,
    open_cache: OpenCache,
    raw_client: Callable[..., redis.Redis],
) -> None:
    cache = open_cache(lru_server.url)
    raw = raw_client(lru_server)
    cache.set("user:0", "first")
    cache.invalidate_prefix("nothing:")  # indexes the namespace and marks it complete
    assert raw.zscore("svc#index", "m") is not None

    pad = "v" * 300
    for chunk in range(20):
        keys = range(chunk * 500, (chunk + 1) * 500)
        cache.set_many({f"{kind}:{i}": pad for i in keys for kind in ("user", "other")})
    assert int(raw.info("stats")["evicted_keys"]) > 0
    if raw.zscore("svc#index", "m") is not None:
        raw.delete("svc#index")  # LRU spared the (busy) index this time: evict it by hand
    assert raw.zscore("svc#index", "m") is None
    live = len(list(raw.scan_iter(match="svc:user:*", count=1000)))
    assert live > 0

    removed = cache.invalidate_prefix("user:")

    # Removing may make room by evicting more, never less: nothing is left.
    assert 0 < removed <= live
    assert list(raw.scan_iter(match="svc:user:*", count=1000)) == []
    assert list(raw.scan_iter(match="svc:other:*", count=1000)) != []


# -- 2. configuration errors raise, never served as misses ---------------------------------


def _url(server: RedisServer, credentials: str) -> str:
    return f"redis://{credentials}127.0.0.1:{server.port}/0"


@pytest.fixture
def no_fast_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls right after a fault go to the server (no open circuit, see ``Outage``)."""
    monkeypatch.setattr("pytest_conncache._redis.Outage.PROBE_EVERY", 0.0)


def _opened_before_start(server: RedisServer, open_cache: OpenCache, credentials: str) -> Cache:
    """A cache opened while ``server`` was down (as at a service's start-up), then started."""
    server.stop()
    cache = open_cache(_url(server, credentials))
    server.start()
    return cache


def _set_user(admin: redis.Redis, name: str, *commands: str) -> None:
    """ACL SETUSER name on >pw ~* *commands (``"+@all"``, ``"-@all"``, ``"+get"``...)."""
    admin.acl_setuser(name, enabled=True, passwords=["+pw"], keys=["~*"], commands=commands)


CALLS: list[Any] = [
    pytest.param(lambda cache: cache.get("k"), id="get"),
    pytest.param(lambda cache: cache.set("k", 1), id="set"),
    pytest.param(lambda cache: cache.get_or_set("k", _never), id="get_or_set"),
    pytest.param(lambda cache: cache.invalidate("k"), id="invalidate"),
]
BAD_CREDENTIALS = [pytest.param("", id="no-password"), pytest.param(":wrong@", id="wrong-password")]


@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
def test_use_backend_raises_when_the_server_refuses_the_credentials(
    auth_server: RedisServer, open_cache: OpenCache, credentials: str
) -> None:
    with pytest.raises(redis.AuthenticationError):
        open_cache(_url(auth_server, credentials))


@pytest.mark.usefixtures("no_fast_fail")
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
@pytest.mark.parametrize("call", CALLS)
def test_a_missing_or_wrong_password_raises_on_every_call(
    auth_server: RedisServer,
    open_cache: OpenCache,
    credentials: str,
    call: Callable[[Cache], object],
) -> None:
    cache = _opened_before_start(auth_server, open_cache, credentials)
    with pytest.raises(redis.AuthenticationError):
        call(cache)
    assert cache.stats.errors == 0


@pytest.mark.asyncio
@pytest.mark.usefixtures("no_fast_fail")
@pytest.mark.parametrize("credentials", BAD_CREDENTIALS)
async def test_aget_with_a_missing_or_wrong_password_raises(
    auth_server: RedisServer, open_cache: OpenCache, credentials: str
) -> None:
    cache = _opened_before_start(auth_server, open_cache, credentials)
    with pytest.raises(redis.AuthenticationError):
        await cache.aget("k")
    assert cache.stats.errors == 0


def test_use_backend_raises_for_a_user_without_permission_to_run_scripts(
    auth_server: RedisServer, open_cache: OpenCache, raw_client: Callable[..., redis.Redis]
) -> None:
    admin = raw_client(auth_server, password=PASSWORD)
    _set_user(admin, "limited", "+get", "+ping")
    with pytest.raises(redis.exceptions.NoPermissionError):
        open_cache(_url(auth_server, "limited:pw@"))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda cache: cache.set("k", 1), id="set"),
        pytest.param(lambda cache: cache.get_or_set("k", _never), id="get_or_set"),
    ],
)
def test_a_user_whose_permission_to_write_was_revoked_gets_no_permission_errors(
    auth_server: RedisServer,
    open_cache: OpenCache,
    raw_client: Callable[..., redis.Redis],
    call: Callable[[Cache], object],
) -> None:
    admin = raw_client(auth_server, password=PASSWORD)
    _set_user(admin, "limited", "+@all")
    cache = open_cache(_url(auth_server, "limited:pw@"))
    _set_user(admin, "limited", "-@all", "+get", "+ping")  # applies to open connections

    assert cache.get("k", "d") == "d"  # GET is still allowed: a genuine miss
    with pytest.raises(redis.exceptions.NoPermissionError):
        call(cache)
    assert cache.stats.errors == 0
    assert admin.exists("svc:k") == 0


def test_a_user_denied_set_inside_scripts_gets_an_error_not_a_miss(
    auth_server: RedisServer, open_cache: OpenCache, raw_client: Callable[..., redis.Redis]
) -> None:
    admin = raw_client(auth_server, password=PASSWORD)
    _set_user(admin, "scripter", "+@all")
    cache = open_cache(_url(auth_server, "scripter:pw@"))
    _set_user(admin, "scripter", "-@all", "+get", "+ping", "+evalsha", "+eval")

    # Redis 7.0 reports a command refused inside a script as a plain error reply.
    with pytest.raises(redis.ResponseError):
        cache.set("k", 1)
    assert cache.stats.errors == 0
    assert admin.exists("svc:k") == 0


# -- 3. foreign or corrupt bytes under the namespace are misses ------------------------------

CORRUPT = [
    pytest.param(b"plain", id="not-an-entry"),
    pytest.param(b"inf inf\n{bad json", id="bad-json"),
    pytest.param(b"inf inf\n\x80\x81", id="undecodable"),
    pytest.param(b"inf inf\n" + b"[" * 100_000 + b"]" * 100_000, id="too-deep"),
]
KEY = "corrupt-key"


def _write_raw(backend: RedisBackend, key: str, raw: bytes) -> None:
    backend.client.set(backend.prefix + key, raw)


@pytest.mark.parametrize("raw", CORRUPT)
def test_a_corrupt_value_is_a_miss_counted_as_an_error_and_warned_once(
    cache: Cache, backend: RedisBackend, caplog: pytest.LogCaptureFixture, raw: bytes
) -> None:
    _write_raw(backend, KEY, raw)
    caplog.set_level(logging.WARNING, logger="pytest_conncache")

    assert cache.get(KEY, "d") == "d"
    assert cache.stats.errors == 1
    warnings = _warnings(caplog)
    assert len(warnings) == 1
    assert repr(KEY) in warnings[0]

    assert cache.get(KEY, "d") == "d"
    assert len(_warnings(caplog)) == 1


@pytest.mark.parametrize("raw", CORRUPT)
def test_a_corrupt_value_is_not_live_and_has_no_ttl(
    cache: Cache, backend: RedisBackend, raw: bytes
) -> None:
    _write_raw(backend, KEY, raw)
    assert KEY not in cache
    assert cache.ttl_remaining(KEY) is None


@pytest.mark.parametrize("raw", CORRUPT)
def test_get_or_set_replaces_a_corrupt_value(
    cache: Cache, backend: RedisBackend, raw: bytes
) -> None:
    _write_raw(backend, KEY, raw)
    assert cache.get_or_set(KEY, lambda: 5) == 5
    assert cache.get(KEY) == 5
    assert cache.ttl_remaining(KEY) == 10


@pytest.mark.parametrize("raw", CORRUPT)
def test_purge_expired_goes_past_a_corrupt_value(
    cache: Cache, backend: RedisBackend, clock: FakeClock, raw: bytes
) -> None:
    _write_raw(backend, KEY, raw)
    cache.set("ordinary", 1, ttl=5)
    clock.advance(6)
    assert cache.purge_expired() == 1
    assert backend.client.exists(backend.prefix + "ordinary") == 0
    assert cache.stats.expirations == 1


# -- 4. out of memory under noeviction -------------------------------------------------------


def _fill(client: redis.Redis) -> None:
    """Write until the server refuses even a small value: its memory is used up."""
    written = 0
    for size in (10_000, 100):
        while True:
            try:
                client.set(f"fill:{written}", b"x" * size)
            except redis.exceptions.OutOfMemoryError:
                break
            written += 1
            assert written < 100_000, "the server never ran out of memory"


def test_set_raises_when_the_server_is_out_of_memory(
    full_server: RedisServer, open_cache: OpenCache, raw_client: Callable[..., redis.Redis]
) -> None:
    cache = open_cache(full_server.url)
    _fill(raw_client(full_server))
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        cache.set("k", 1)
    assert cache.stats.errors == 0


def test_get_or_set_serves_its_value_when_the_server_is_out_of_memory(
    full_server: RedisServer,
    open_cache: OpenCache,
    raw_client: Callable[..., redis.Redis],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = open_cache(full_server.url)
    _fill(raw_client(full_server))
    caplog.set_level(logging.WARNING, logger="pytest_conncache")

    assert cache.get_or_set("k", lambda: 5) == 5
    assert cache.stats.errors == 1
    assert len(_warnings(caplog)) == 1
    assert cache.get_or_set("k", lambda: 6) == 6  # not cached: computed again
    assert cache.stats.errors == 2
    assert len(_warnings(caplog)) == 1


def test_get_or_set_serves_its_value_under_oom_when_the_namespace_lost_its_stamps(
    full_server: RedisServer,
    open_cache: OpenCache,
    raw_client: Callable[..., redis.Redis],
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = open_cache(full_server.url)
    raw = raw_client(full_server)
    raw.delete("svc#stamps")  # evicted before, or never made: the lookup must not write
    _fill(raw)
    caplog.set_level(logging.WARNING, logger="pytest_conncache")

    assert cache.get_or_set("k", lambda: 5) == 5
    assert cache.stats.errors == 1
    assert len(_warnings(caplog)) == 1


def test_get_reads_while_the_server_is_out_of_memory(
    full_server: RedisServer, open_cache: OpenCache, raw_client: Callable[..., redis.Redis]
) -> None:
    cache = open_cache(full_server.url)
    cache.set("k", "stored before")
    _fill(raw_client(full_server))
    assert cache.get("k") == "stored before"
    assert cache.get("absent", "d") == "d"
    assert cache.stats.errors == 0


def test_a_key_of_another_type_under_the_namespace_is_a_miss_and_is_replaced(
    backend: RedisBackend, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    cache: Cache = ConnectionCache(10, clock=clock)
    cache.use_backend(backend)
    backend.client.rpush(f"{backend.namespace}:k", "a")
    assert cache.get("k", "default") == "default"
    assert "k" not in cache
    assert cache.ttl_remaining("k") is None
    assert cache.stats.errors == 1
    assert "cache entry 'k' cannot be read" in caplog.text
    assert cache.get_or_set("k", lambda: 5) == 5
    assert cache.get("k") == 5
