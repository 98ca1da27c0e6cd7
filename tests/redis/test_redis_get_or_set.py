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
from tests.threadutil import WAIT_LIMIT, Worker, wait_until_waiting_on_flight

Cache = ConnectionCache[Any]


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
    # Bounded: if the first call fails before its factory, say so, never hang.
    running = asyncio.ensure_future(inside.wait())
    await asyncio.wait({task, running}, timeout=WAIT_LIMIT, return_when=asyncio.FIRST_COMPLETED)
    running.cancel()
    assert inside.is_set(), f"the first call never ran its factory: {task}"
    assert await asyncio.wait_for(second.aget_or_set("k", never), WAIT_LIMIT) == "from first"
    assert await asyncio.wait_for(task, WAIT_LIMIT) == "from first"


def _get_calls(backend: RedisBackend) -> int:
    stats: dict[str, Any] = backend.client.info("commandstats")
    return int(stats.get("cmdstat_get", {}).get("calls", 0))


def test_callers_during_a_running_call_wait_without_a_round_trip(
    cache: Cache, backend: RedisBackend
) -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(WAIT_LIMIT)
        return "computed"

    leader = Worker(lambda: cache.get_or_set("k", slow))
    leader.start()
    assert started.wait(WAIT_LIMIT)
    gets_before = _get_calls(backend)
    waiters = [Worker(lambda: cache.get_or_set("k", slow)) for _ in range(3)]
    for waiter in waiters:
        waiter.start()
    wait_until_waiting_on_flight(waiters)
    assert _get_calls(backend) == gets_before  # the waiters sent no GET
    release.set()
    assert [w.finish() for w in [leader, *waiters]] == ["computed"] * 4
    assert (cache.stats.misses, cache.stats.hits) == (1, 3)
