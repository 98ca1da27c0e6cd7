"""Two processes on one namespace: what one invalidates, the other no longer sees."""

from __future__ import annotations

from typing import Any

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.other_process import run_other_process
from tests.redis_server import RedisServer


def test_an_invalidation_in_another_process_is_seen_here(
    redis_server: RedisServer, backend: RedisBackend
) -> None:
    cache: ConnectionCache[Any] = ConnectionCache()  # wall clock, as in production
    cache.use_backend(backend)
    cache.set("user-record:t1:1", {"name": "old"})
    cache.set("user-record:t1:2", {"name": "old"})
    cache.set("user-record:t2:1", {"name": "kept"})
    assert cache.get("user-record:t1:1") == {"name": "old"}

    out = run_other_process(
        redis_server.url,
        backend.namespace,
        """
        print(cache.get("user-record:t2:1")["name"])
        print(cache.invalidate_prefix("user-record:t1:"))
        cache.set("connection:9", [1, 2])
        """,
    )

    assert out.split() == ["kept", "2"]
    assert cache.get("user-record:t1:1") is None
    assert cache.get("user-record:t1:2") is None
    assert cache.get("user-record:t2:1") == {"name": "kept"}
    assert cache.get("connection:9") == [1, 2]
