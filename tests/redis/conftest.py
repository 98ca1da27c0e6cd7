"""Fixtures for the Redis backend's tests.

The session's ``redis_server`` (one per xdist worker) and ``redis_binary``
come from ``tests/conftest.py``; ``clock`` and ``cache`` are overridden here:
a clock starting at 0 and a cache on Redis only.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer


@pytest.fixture
def own_redis_server(redis_binary: str) -> Iterator[RedisServer]:
    """A redis-server for this test alone, free to be stopped and restarted."""
    server = RedisServer(redis_binary)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def backend(redis_server: RedisServer, namespace: str) -> Iterator[RedisBackend]:
    """A backend on a fresh namespace, dropped after the test."""
    backend = RedisBackend.from_url(redis_server.url, namespace=namespace)
    yield backend
    backend.drop_namespace()
    backend.client.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(backend: RedisBackend, clock: FakeClock) -> ConnectionCache[Any]:
    """A Redis-backed cache with default ttl 10 s on a fake clock."""
    cache: ConnectionCache[Any] = ConnectionCache(10.0, clock=clock)
    cache.use_backend(backend)
    return cache
