"""aget_or_set: cache-aside for async factories, one shared await per missing key."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache
from tests.fakes import FakeClock

pytestmark = pytest.mark.on_cluster


class Boom(Exception):
    pass


class GatedFactory:
    """An async factory that signals when it starts and finishes only once released."""

    def __init__(self, value: Any = "fresh", error: BaseException | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.value


async def callers(
    cache: ConnectionCache[Any], key: str, factory: GatedFactory, n: int
) -> list[asyncio.Task[Any]]:
    """``n`` concurrent ``aget_or_set`` calls, on connections opened beforehand.

    The tests take every caller to be waiting once the factory started. A
    caller whose first lookup is still on its way when the whole fill has
    landed would look again and lead a fill of its own; on this test's fresh
    event loop, opening a connection per caller (a cluster client also reads
    the topology) could take that long. So the peeks first, which count
    nothing, open the ``n`` connections.
    """
    await asyncio.gather(*(cache.ahas(key) for _ in range(n)))
    return [asyncio.ensure_future(cache.aget_or_set(key, factory)) for _ in range(n)]


async def started(factory: GatedFactory) -> None:
    """Wait for the factory to start: by then every caller created before it is waiting."""
    await asyncio.wait_for(factory.started.wait(), 10)


async def settle(tasks: list[asyncio.Task[Any]]) -> list[Any]:
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 10)


@pytest.mark.asyncio
async def test_miss_awaits_the_factory_and_returns_its_value(cache: ConnectionCache[Any]) -> None:
    async def factory() -> str:
        return "made"

    assert await cache.aget_or_set("k", factory) == "made"


@pytest.mark.asyncio
async def test_miss_stores_the_value_and_counts_miss_and_set(
    cache: ConnectionCache[Any],
) -> None:
    async def factory() -> str:
        return "made"

    await cache.aget_or_set("k", factory)
    assert cache.get("k") == "made"
    assert cache.stats == CacheStats(hits=1, misses=1, sets=1)


@pytest.mark.asyncio
async def test_hit_does_not_call_the_factory(cache: ConnectionCache[Any]) -> None:
    cache.set("k", "cached")
    calls: list[int] = []

    async def factory() -> str:
        calls.append(1)
        return "unused"

    assert await cache.aget_or_set("k", factory) == "cached"
    assert calls == []
    assert cache.stats == CacheStats(hits=1, sets=1)


@pytest.mark.asyncio
async def test_expired_entry_counts_miss_expiration_and_set(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", "old", ttl=1)
    clock.advance(1)

    async def factory() -> str:
        return "new"

    assert await cache.aget_or_set("k", factory) == "new"
    assert cache.stats == CacheStats(misses=1, sets=2, expirations=1)


@pytest.mark.asyncio
async def test_ttl_argument_applies(cache: ConnectionCache[Any]) -> None:
    async def factory() -> int:
        return 1

    await cache.aget_or_set("k", factory, ttl=4)
    assert cache.ttl_remaining("k") == 4


@pytest.mark.asyncio
async def test_concurrent_coroutines_share_one_await(cache: ConnectionCache[Any]) -> None:
    factory = GatedFactory("shared")
    tasks = await callers(cache, "k", factory, 5)
    await started(factory)
    factory.release.set()
    assert await settle(tasks) == ["shared"] * 5
    assert factory.calls == 1


@pytest.mark.asyncio
async def test_coroutine_waiters_are_counted_as_hits(cache: ConnectionCache[Any]) -> None:
    factory = GatedFactory()
    tasks = await callers(cache, "k", factory, 4)
    await started(factory)
    factory.release.set()
    await settle(tasks)
    assert cache.stats == CacheStats(hits=3, misses=1, sets=1)


@pytest.mark.asyncio
async def test_exception_reaches_every_coroutine(cache: ConnectionCache[Any]) -> None:
    error = Boom("backend down")
    factory = GatedFactory(error=error)
    tasks = await callers(cache, "k", factory, 4)
    await started(factory)
    factory.release.set()
    results = await settle(tasks)
    assert all(result is error for result in results)
    assert factory.calls == 1


@pytest.mark.asyncio
async def test_exception_is_not_cached(cache: ConnectionCache[Any]) -> None:
    factory = GatedFactory(error=Boom())
    tasks = await callers(cache, "k", factory, 3)
    await started(factory)
    factory.release.set()
    await settle(tasks)
    assert not cache.has("k")

    async def recovered() -> str:
        return "recovered"

    assert await cache.aget_or_set("k", recovered) == "recovered"


@pytest.mark.asyncio
async def test_coroutines_served_an_exception_count_as_misses(
    cache: ConnectionCache[Any],
) -> None:
    factory = GatedFactory(error=Boom())
    tasks = await callers(cache, "k", factory, 3)
    await started(factory)
    factory.release.set()
    await settle(tasks)
    assert cache.stats == CacheStats(misses=3)


@pytest.mark.asyncio
async def test_cancelling_the_first_caller_does_not_cancel_the_shared_await(
    cache: ConnectionCache[Any],
) -> None:
    factory = GatedFactory("shared")
    first, *others = await callers(cache, "k", factory, 3)
    await started(factory)
    first.cancel()
    factory.release.set()
    results = await settle([first, *others])
    assert isinstance(results[0], asyncio.CancelledError)
    assert results[1:] == ["shared", "shared"]
    assert factory.calls == 1
    assert cache.get("k") == "shared"


@pytest.mark.asyncio
async def test_cancelling_a_later_caller_does_not_cancel_the_shared_await(
    cache: ConnectionCache[Any],
) -> None:
    factory = GatedFactory("shared")
    first, second, third = await callers(cache, "k", factory, 3)
    await started(factory)
    second.cancel()
    factory.release.set()
    results = await settle([first, second, third])
    assert results[0] == results[2] == "shared"
    assert isinstance(results[1], asyncio.CancelledError)
    assert factory.calls == 1


@pytest.mark.asyncio
async def test_different_keys_run_their_factories_independently(
    cache: ConnectionCache[Any],
) -> None:
    slow = GatedFactory("slow")
    slow_task = asyncio.ensure_future(cache.aget_or_set("slow", slow))
    await started(slow)

    async def fast() -> str:
        return "quick"

    assert await asyncio.wait_for(cache.aget_or_set("fast", fast), 10) == "quick"
    slow.release.set()
    assert await settle([slow_task]) == ["slow"]


@pytest.mark.asyncio
async def test_key_invalidated_during_the_await_is_not_stored(
    cache: ConnectionCache[Any],
) -> None:
    factory = GatedFactory("stale")
    tasks = await callers(cache, "k", factory, 2)
    await started(factory)
    cache.invalidate("k")
    factory.release.set()
    assert await settle(tasks) == ["stale", "stale"]
    assert not cache.has("k")
    assert cache.stats.sets == 0


@pytest.mark.asyncio
async def test_key_set_during_the_await_keeps_the_newer_value(
    cache: ConnectionCache[Any],
) -> None:
    factory = GatedFactory("stale")
    tasks = await callers(cache, "k", factory, 1)
    await started(factory)
    cache.set("k", "newer")
    factory.release.set()
    await settle(tasks)
    assert cache.get("k") == "newer"


@pytest.mark.asyncio
async def test_caller_after_an_invalidation_does_not_join_the_stale_await(
    cache: ConnectionCache[Any],
) -> None:
    old = GatedFactory("before-update")
    old_tasks = await callers(cache, "k", old, 1)
    await started(old)
    cache.invalidate_prefix("k")

    async def fresh() -> str:
        return "after-update"

    assert await asyncio.wait_for(cache.aget_or_set("k", fresh), 10) == "after-update"
    old.release.set()
    assert await settle(old_tasks) == ["before-update"]
    assert cache.get("k") == "after-update"


@pytest.mark.asyncio
async def test_abandoned_failing_factory_logs_no_unretrieved_exception(
    cache: ConnectionCache[Any], caplog: pytest.LogCaptureFixture
) -> None:
    factory = GatedFactory(error=Boom())
    tasks = await callers(cache, "k", factory, 1)
    await started(factory)
    tasks[0].cancel()
    await settle(tasks)
    del tasks  # the cancelled caller's traceback would keep the factory task alive
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        factory.release.set()
        for _ in range(5):
            await asyncio.sleep(0)
        gc.collect()
    assert not cache.has("k")
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


@pytest.mark.asyncio
async def test_a_factory_awaiting_its_own_key_raises_instead_of_hanging(
    cache: ConnectionCache[Any],
) -> None:
    async def factory() -> int:
        return int(await cache.aget_or_set("k", lambda: asyncio.sleep(0, result=1)))

    with pytest.raises(RecursionError, match=r"aget_or_set\('k'\)"):
        await asyncio.wait_for(cache.aget_or_set("k", factory), timeout=10)
    assert "k" not in cache
    assert await cache.aget_or_set("k", lambda: asyncio.sleep(0, result=2)) == 2
