"""Fixtures for the Redis Cluster tests.

The session's ``redis_cluster`` (three masters with a replica each, one per
xdist worker) comes from ``tests/conftest.py``. Here the fixtures the Redis
tests use have the same names and meaning, on the cluster: ``redis_server``
is the session's cluster (its ``url`` names a node, and ``from_url`` finds
the cluster from it), ``backend`` a cluster backend on a fresh namespace,
``cache`` a cache on it, ``clock`` a fake clock starting at 0. So tests
written for one server run here unchanged (``test_cluster_shared.py``).

``own_cluster`` is a cluster for one test alone, free to lose nodes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.fakes import FakeClock
from tests.redis_cluster import LocalCluster, redis_cli_binary


@pytest.fixture
def redis_server(redis_cluster: LocalCluster) -> LocalCluster:
    """The session's cluster, under the name the one-server tests use."""
    return redis_cluster


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def backend(redis_cluster: LocalCluster, namespace: str) -> Iterator[RedisBackend]:
    """A cluster backend on a fresh namespace, dropped after the test."""
    backend = RedisBackend.from_url(redis_cluster.url, namespace=namespace)
    assert backend.cluster
    yield backend
    backend.drop_namespace()
    backend.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def cache(backend: RedisBackend, clock: FakeClock) -> ConnectionCache[Any]:
    """A cache on the cluster with default ttl 10 s on a fake clock."""
    cache: ConnectionCache[Any] = ConnectionCache(10.0, clock=clock)
    cache.use_backend(backend)
    return cache


@pytest.fixture
def own_cluster(redis_binary: str) -> Iterator[LocalCluster]:
    """A cluster of three masters with a replica each for this test alone (nodes may be
    killed); a master is given 1 s of silence before its replica takes over."""
    cli = redis_cli_binary()
    if cli is None:
        pytest.skip("redis-cli is not installed (apt-get install redis-tools)")
    with LocalCluster(redis_binary, cli, node_timeout=1000) as cluster:
        yield cluster
