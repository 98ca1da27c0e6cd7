"""Cache-aside on Redis: single-flight in a process, an opt-in lock across processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.fakes import FakeClock

Cache = ConnectionCache[Any]


def test_get_or_set_calls_the_factory_once_then_hits(cache: Cache) -> None:
    calls: list[int] = []

    def factory() -> list[int]:
        calls.append(1)
        return [1, 2]

    assert cache.get_or_set("k", factory) == [1, 2]
    assert cache.get_or_set("k", factory) == [1, 2]
    assert len(calls) == 1
    stats = cache.stats
    assert (stats.hits, stats.misses, stats.sets) == (1, 1, 1)


def test_get_or_set_stores_with_the_given_ttl(cache: Cache, clock: FakeClock) -> None:
    cache.get_or_set("k", lambda: 1, ttl=5)
    clock.advance(5)
    assert cache.get_or_set("k", lambda: 2) == 2


def test_concurrent_threads_share_one_factory_call(cache: Cache) -> None:
    started = threading.Event()
    release = threading.Event()
    calls: list[int] = []

    def factory() -> str:
        calls.append(1)
        started.set()
        release.wait(5)
        return "value"

    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_set("k", factory)))
        for _ in range(8)
    ]
    threads[0].start()
    assert started.wait(5)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.1)
    release.set()
    for thread in threads:
        thread.join(5)
    assert results == ["value"] * 8
    assert len(calls) == 1
    stats = cache.stats
    assert stats.hits + stats.misses == 8
    assert stats.misses == 1


def test_a_failing_factory_stores_nothing_and_reaches_the_caller(cache: Cache) -> None:
    def factory() -> int:
        raise RuntimeError("service down")

    with pytest.raises(RuntimeError, match="service down"):
        cache.get_or_set("k", factory)
    assert not cache.has("k")
    assert cache.get_or_set("k", lambda: 3) == 3


def test_an_invalidation_during_the_factory_keeps_its_value_out(cache: Cache) -> None:
    def factory() -> str:
        cache.invalidate("k")
        return "stale"

    assert cache.get_or_set("k", factory) == "stale"
    assert not cache.has("k")


@pytest.mark.asyncio
async def test_aget_or_set_shares_one_await_between_coroutines(cache: Cache) -> None:
    calls: list[int] = []

    async def factory() -> dict[str, int]:
        calls.append(1)
        await asyncio.sleep(0.05)
        return {"n": 1}

    results = await asyncio.gather(*(cache.aget_or_set("k", factory) for _ in range(5)))
    assert results == [{"n": 1}] * 5
    assert len(calls) == 1
    assert await cache.aget_or_set("k", factory) == {"n": 1}
    assert cache.get("k") == {"n": 1}
    stats = cache.stats
    assert (stats.misses, stats.hits, stats.sets) == (1, 6, 1)


@pytest.mark.asyncio
async def test_aget_or_set_failure_stores_nothing(cache: Cache) -> None:
    async def factory() -> int:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await cache.aget_or_set("k", factory)
    assert not cache.has("k")


@pytest.fixture
def locked_backend(backend: RedisBackend) -> Iterator[RedisBackend]:
    """The test's namespace with the cross-process lock on, polling every 10 ms."""
    yield RedisBackend(
        backend.client, namespace=backend.namespace, cross_process_lock=True, lock_timeout=5
    )


def _process_like_caches(backend: RedisBackend, clock: FakeClock) -> tuple[Cache, Cache]:
    """Two caches on one namespace: as two processes see it (no shared single-flight)."""
    first: Cache = ConnectionCache(clock=clock)
    second: Cache = ConnectionCache(clock=clock)
    first.use_backend(backend)
    second.use_backend(backend)
    return first, second


def test_the_cross_process_lock_lets_one_cache_compute(
    locked_backend: RedisBackend, clock: FakeClock
) -> None:
    first, second = _process_like_caches(locked_backend, clock)
    inside = threading.Event()
    calls: list[str] = []

    def slow() -> str:
        calls.append("first")
        inside.set()
        time.sleep(0.2)
        return "computed once"

    def fast() -> str:
        calls.append("second")
        return "computed twice"

    results: dict[str, str] = {}
    worker = threading.Thread(target=lambda: results.update(a=first.get_or_set("k", slow)))
    worker.start()
    assert inside.wait(5)
    results["b"] = second.get_or_set("k", fast)
    worker.join(5)
    assert results == {"a": "computed once", "b": "computed once"}
    assert calls == ["first"]
    assert not locked_backend.client.exists(f"{locked_backend.namespace}#lock:k")


def test_a_waiter_computes_itself_after_the_lock_timeout(
    backend: RedisBackend, clock: FakeClock
) -> None:
    locked = RedisBackend(
        backend.client, namespace=backend.namespace, cross_process_lock=True, lock_timeout=0.2
    )
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(locked)
    # Another process holds the lock and never finishes.
    backend.client.set(f"{backend.namespace}#lock:k", b"someone-else", px=60_000)
    started = time.monotonic()
    assert cache.get_or_set("k", lambda: "mine") == "mine"
    assert 0.2 <= time.monotonic() - started < 3
    assert cache.get("k") == "mine"


@pytest.mark.asyncio
async def test_the_async_lock_waits_for_another_process_value(
    locked_backend: RedisBackend, clock: FakeClock
) -> None:
    first, second = _process_like_caches(locked_backend, clock)
    inside = asyncio.Event()

    async def slow() -> str:
        inside.set()
        await asyncio.sleep(0.2)
        return "from first"

    async def never() -> str:
        raise AssertionError("the second cache must not compute")

    task = asyncio.ensure_future(first.aget_or_set("k", slow))
    await inside.wait()
    assert await second.aget_or_set("k", never) == "from first"
    assert await task == "from first"
