"""Fixtures shared by the core's tests.

``cache`` is the contract fixture: every test that takes it runs twice, on
the in-memory store (``[memory]``) and on a real redis-server (``[redis]``).
``memory_cache`` is for the tests of what only the in-memory store does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, RedisBackend
from tests.fakes import FakeClock
from tests.redis_server import RedisServer, redis_server_binary

# What the contract fixtures are built from: ConnectionCache(*args, **kwargs).
MakeCache = Callable[..., ConnectionCache[Any]]


@pytest.fixture(scope="session")
def redis_binary() -> str:
    """The redis-server binary; skips the test when it is not installed."""
    binary = redis_server_binary()
    if binary is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    return binary


@pytest.fixture(scope="session")
def redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """A redis-server on a free 127.0.0.1 port for the whole session (one per xdist worker)."""
    with RedisServer(redis_binary) as server:
        yield server


@pytest.fixture(scope="session")
def _redis_session_backend(redis_server: RedisServer) -> Iterator[RedisBackend]:
    """One client for the contract tests; each test takes its own namespaces from it."""
    backend = RedisBackend.from_url(redis_server.url, namespace="contract")
    yield backend
    backend.client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", "redis"])
def make_cache(request: pytest.FixtureRequest) -> Iterator[MakeCache]:
    """Builds ``ConnectionCache(*args, **kwargs)`` on the backend under test.

    On ``redis`` each cache gets a fresh namespace of the session's server,
    dropped (and the cache moved back to memory) after the test.
    """
    if request.param == "memory":
        yield ConnectionCache
        return
    base: RedisBackend = request.getfixturevalue("_redis_session_backend")
    made: list[tuple[ConnectionCache[Any], RedisBackend]] = []

    def make(*args: Any, **kwargs: Any) -> ConnectionCache[Any]:
        cache: ConnectionCache[Any] = ConnectionCache(*args, **kwargs)
        backend = base.with_namespace(f"test-{uuid.uuid4().hex[:12]}")
        cache.use_backend(backend)
        made.append((cache, backend))
        return cache

    yield make
    for cache, backend in made:
        backend.drop_namespace()
        cache.use_backend(None)


@pytest.fixture
def cache(make_cache: MakeCache, clock: FakeClock) -> ConnectionCache[Any]:
    """A cache with default ttl 10 s on ``clock``, in memory and on Redis."""
    return make_cache(10.0, clock=clock)


@pytest.fixture
def memory_cache(clock: FakeClock) -> ConnectionCache[Any]:
    """The same cache, in memory only: for behaviour the Redis backend does not share."""
    return ConnectionCache(10.0, clock=clock)
