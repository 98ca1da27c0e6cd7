"""Fixtures shared by the core's tests.

``cache`` is the contract fixture: every test that takes it runs on the
in-memory store (``[memory]``) and on a real redis-server (``[redis]``); in
modules marked ``on_cluster`` also on a real Redis Cluster of three masters
with a replica each (``[cluster]``, see ``tests/redis_cluster.py``); in
modules marked ``call_styles`` also through the awaitable twins
(``[...-async]``, see ``tests/callstyles.py``) besides the sync methods.
``memory_cache`` is for the tests of what only the in-memory store does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, RedisBackend
from tests.callstyles import AsyncView, LoopThread
from tests.fakes import FakeClock
from tests.redis_cluster import LocalCluster, redis_cli_binary
from tests.redis_server import RedisServer, redis_server_binary

# What the contract fixtures are built from: ConnectionCache(*args, **kwargs).
MakeCache = Callable[..., ConnectionCache[Any]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: takes seconds (churns, instruction counts); .ci/run runs them too"
    )
    config.addinivalue_line(
        "markers",
        "call_styles: run the module's contract tests through the sync methods and "
        "through their awaitable twins",
    )
    config.addinivalue_line(
        "markers",
        "on_cluster: run the module's contract tests on a Redis Cluster too, besides memory "
        "and one Redis server",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "store_kind" in metafunc.fixturenames:
        kinds = ["memory", "redis"]
        if metafunc.definition.get_closest_marker("on_cluster"):
            kinds.append("cluster")
        metafunc.parametrize("store_kind", kinds, indirect=True)
    if "call_style" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "call_styles"
    ):
        metafunc.parametrize("call_style", ["sync", "async"])


@pytest.fixture
def call_style() -> str:
    """How the contract fixtures are called: "sync", or "async" through the twins."""
    return "sync"


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    """An event loop in a thread of its own, for the awaitable twins."""
    loop = LoopThread()
    yield loop
    loop.close()


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


@pytest.fixture(scope="session")
def redis_cluster(redis_binary: str) -> Iterator[LocalCluster]:
    """A Redis Cluster on loopback for the whole session (one per xdist worker): three
    masters with a replica each; skips the test when redis-cli is not installed."""
    cli = redis_cli_binary()
    if cli is None:
        pytest.skip("redis-cli is not installed (apt-get install redis-tools)")
    with LocalCluster(redis_binary, cli) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def _cluster_session_backend(redis_cluster: LocalCluster) -> Iterator[RedisBackend]:
    """One cluster client for the contract tests; each test takes its own namespaces."""
    backend = RedisBackend.from_url(redis_cluster.url, namespace="contract")
    assert backend.cluster
    yield backend
    backend.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Where the contract fixtures keep entries: "memory", "redis" or "cluster"."""
    kind: str = getattr(request, "param", "memory")
    return kind


@pytest.fixture
def make_cache(
    request: pytest.FixtureRequest, store_kind: str, call_style: str
) -> Iterator[MakeCache]:
    """Builds ``ConnectionCache(*args, **kwargs)`` on the backend under test.

    On ``redis`` (``cluster``) each cache gets a fresh namespace of the
    session's server (cluster), dropped (and the cache moved back to memory)
    after the test. With the ``async`` call style the cache comes wrapped in
    an ``AsyncView``.
    """
    made: list[tuple[ConnectionCache[Any], RedisBackend | None]] = []
    base: RedisBackend | None = None
    if store_kind == "redis":
        base = request.getfixturevalue("_redis_session_backend")
    elif store_kind == "cluster":
        base = request.getfixturevalue("_cluster_session_backend")
    loop: LoopThread | None = None
    if call_style == "async":
        loop = request.getfixturevalue("loop_thread")

    def make(*args: Any, **kwargs: Any) -> ConnectionCache[Any]:
        cache: ConnectionCache[Any] = ConnectionCache(*args, **kwargs)
        backend = None
        if base is not None:
            backend = base.with_namespace(f"test-{uuid.uuid4().hex[:12]}")
            cache.use_backend(backend)
        made.append((cache, backend))
        if loop is not None:
            return AsyncView(cache, loop)  # type: ignore[return-value]
        return cache

    yield make
    for cache, backend in made:
        if backend is not None:
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
