"""The cache stays consistent when a clock, an observer or a value misbehaves.

Each test is a regression test for a defect of the two-caches design
(memory and Redis glued together); the ``cache`` fixture runs each on the
in-memory store and on a real redis-server.
"""

from __future__ import annotations

import gc
import math
import threading
import warnings
import weakref
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache, hookimpl, observers
from tests.fakes import FakeClock
from tests.threadutil import WAIT_LIMIT, Worker, wait_until_waiting_on_flight

pytestmark = pytest.mark.on_cluster

Cache = ConnectionCache[Any]


class Payload:
    """A value that can be watched through a weak reference."""


class Boom(Exception):
    pass


class FailingClock:
    """A FakeClock that raises on the reading after ``fail_after`` more readings."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.fail_in: int | None = None

    def __call__(self) -> float:
        if self.fail_in is not None:
            if self.fail_in == 0:
                self.fail_in = None
                raise Boom("clock broke")
            self.fail_in -= 1
        return self.now


class RaisingOnSet:
    @hookimpl
    def conncache_set(self, key: str) -> None:
        raise Boom(f"observer broke on {key}")


# -- bounded caches free what they remove -------------------------------------------------


@pytest.mark.parametrize(
    "remove",
    [
        pytest.param(lambda c, clock: c.invalidate("user:1"), id="invalidate"),
        pytest.param(lambda c, clock: c.invalidate_prefix("user:"), id="invalidate_prefix"),
        pytest.param(lambda c, clock: c.invalidate_pattern("^user"), id="invalidate_pattern"),
        pytest.param(lambda c, clock: c.set("user:1", "newer"), id="replacement"),
        pytest.param(lambda c, clock: c.clear(), id="clear"),
        pytest.param(lambda c, clock: (clock.advance(20), c.get("user:1")), id="expiry-on-read"),
        pytest.param(lambda c, clock: (clock.advance(20), c.purge_expired()), id="purge"),
        pytest.param(lambda c, clock: [c.set(f"x{i}", i) for i in range(5)], id="eviction"),
    ],
)
def test_a_bounded_cache_frees_a_removed_value_at_once(clock: FakeClock, remove: Any) -> None:
    cache: Cache = ConnectionCache(10, clock=clock, max_entries=5)
    payload = Payload()
    watch = weakref.ref(payload)
    cache.set("user:1", payload)
    del payload
    remove(cache, clock)
    assert watch() is None, "the removed value is still referenced by the cache"


def test_a_bounded_cache_frees_every_value_invalidate_prefix_removes(clock: FakeClock) -> None:
    cache: Cache = ConnectionCache(10, clock=clock, max_entries=10_000)
    watches = []
    for i in range(200):
        payload = Payload()
        watches.append(weakref.ref(payload))
        cache.set(f"user:{i}", payload)
    del payload
    assert cache.invalidate_prefix("user:") == 200
    gc.collect()
    assert sum(watch() is not None for watch in watches) == 0


# -- a failing clock changes nothing ------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c: c.invalidate_prefix("user:"), id="invalidate_prefix"),
        pytest.param(lambda c: c.invalidate_pattern("^user"), id="invalidate_pattern"),
        pytest.param(lambda c: c.invalidate("user:1"), id="invalidate"),
        pytest.param(lambda c: c.clear(), id="clear"),
        pytest.param(lambda c: c.set("user:9", 9), id="set"),
        pytest.param(lambda c: c.purge_expired(), id="purge_expired"),
    ],
)
def test_a_clock_that_raises_leaves_the_cache_as_it_was(make_cache: Any, call: Any) -> None:
    clock = FailingClock()
    cache: Cache = make_cache(10, clock=clock)
    for i in range(3):
        cache.set(f"user:{i}", i)
    clock.fail_in = 0
    with pytest.raises(Boom):
        call(cache)
    assert sorted(cache.keys()) == ["user:0", "user:1", "user:2"]
    # The index still knows every key: a later prefix removal finds them all,
    # also after they are set again.
    cache.set("user:1", "again")
    assert cache.invalidate_prefix("user:") == 3
    assert cache.keys() == []


# -- every waiter of get_or_set gets an answer --------------------------------------------


def _leader_and_waiters(cache: Cache, release: threading.Event, n: int = 3) -> list[Worker]:
    started = threading.Event()

    def factory() -> str:
        started.set()
        assert release.wait(WAIT_LIMIT)
        return "computed"

    leader = Worker(lambda: cache.get_or_set("k", factory))
    leader.start()
    assert started.wait(WAIT_LIMIT)
    waiters = [Worker(lambda: cache.get_or_set("k", factory)) for _ in range(n)]
    for waiter in waiters:
        waiter.start()
    wait_until_waiting_on_flight(waiters)
    return [leader, *waiters]


def test_waiters_get_the_error_when_an_observer_breaks_the_store(cache: Cache) -> None:
    release = threading.Event()
    workers = _leader_and_waiters(cache, release)
    broken = RaisingOnSet()
    observers.register(broken)
    try:
        release.set()
        for worker in workers:
            worker.finish()  # none waits forever
    finally:
        observers.unregister(broken)
    assert all(isinstance(worker.error, Boom) for worker in workers)
    assert cache.get_or_set("k", lambda: "later") in ("computed", "later")


def test_waiters_get_the_error_when_the_clock_breaks_the_store(make_cache: Any) -> None:
    clock = FailingClock()
    cache: Cache = make_cache(10, clock=clock)
    release = threading.Event()
    workers = _leader_and_waiters(cache, release)
    clock.fail_in = 0  # the leader's store reads the clock first
    release.set()
    for worker in workers:
        worker.finish()
    assert all(isinstance(worker.error, Boom) for worker in workers)
    assert not cache.has("k")
    assert cache.get_or_set("k", lambda: "later") == "later"


# -- rough edges ---------------------------------------------------------------------------


def test_a_rejected_value_is_quoted_shortly(cache: Cache) -> None:
    huge = "x" * 10_000_000
    with pytest.raises(TypeError) as raised:
        cache.set(huge.encode(), 1)  # type: ignore[arg-type]
    assert len(str(raised.value)) < 400
    assert "key must be a str" in str(raised.value)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda c, k: c.set(k, 1), id="set"),
        pytest.param(lambda c, k: c.get(k), id="get"),
        pytest.param(lambda c, k: c.get_or_set(k, lambda: 1), id="get_or_set"),
        pytest.param(lambda c, k: c.invalidate(k), id="invalidate"),
        pytest.param(lambda c, k: c.has(k), id="has"),
        pytest.param(lambda c, k: c.invalidate_many([k]), id="invalidate_many"),
        pytest.param(lambda c, k: c.get_many([k]), id="get_many"),
    ],
)
def test_a_key_that_cannot_be_encoded_raises_naming_key(cache: Cache, call: Any) -> None:
    with pytest.raises(ValueError, match=r"key.* must be encodable as UTF-8, got '\\ud800'"):
        call(cache, "\ud800")
    assert cache.stats == CacheStats()


def test_a_ttl_too_small_for_the_clock_raises(cache: Cache, clock: FakeClock) -> None:
    clock.now = 1e9
    with pytest.raises(ValueError, match=r"ttl 1e-300 is too small for the clock"):
        cache.set("k", 1, ttl=1e-300)
    assert not cache.has("k")
    assert cache.stats == CacheStats()


def test_a_clock_returning_no_real_number_raises_naming_the_clock(make_cache: Any) -> None:
    def broken_clock() -> Any:
        return "noon"

    cache: Cache = make_cache(10, clock=broken_clock)
    with pytest.raises(TypeError, match=r"clock .*broken_clock.* must return a real number"):
        cache.set("k", 1)
    assert not cache.has("k")


def test_a_clock_returning_a_fraction_works(cache: Cache) -> None:
    from fractions import Fraction

    def fraction_clock() -> Any:
        return Fraction(7, 2)

    cache_with_fraction: Cache = ConnectionCache(10, clock=fraction_clock)
    cache_with_fraction.set("k", 1)
    assert cache_with_fraction.get("k") == 1
    assert cache_with_fraction.ttl_remaining("k") == 10


def test_get_or_set_refuses_a_factory_returning_a_coroutine(cache: Cache) -> None:
    async def load() -> int:
        return 1

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "coroutine was never awaited"
        with pytest.raises(TypeError, match=r"key 'k' returned an awaitable.*aget_or_set"):
            cache.get_or_set("k", load)  # type: ignore[unused-coroutine]
        gc.collect()
    assert not cache.has("k")


@pytest.mark.asyncio
async def test_aget_or_set_refuses_a_sync_factory_before_counting_a_miss(cache: Cache) -> None:
    with pytest.raises(TypeError, match=r"key 'k' returned 5 \(int\), not an awaitable"):
        await cache.aget_or_set("k", lambda: 5)  # type: ignore[arg-type,return-value]
    assert cache.stats == CacheStats()
    assert not cache.has("k")


@pytest.mark.asyncio
async def test_a_pending_async_flight_does_not_keep_a_closed_loop_alive(cache: Cache) -> None:
    import asyncio

    def run_in_a_loop_of_its_own() -> weakref.ref[asyncio.AbstractEventLoop]:
        loop = asyncio.new_event_loop()

        async def never() -> int:
            await asyncio.Event().wait()
            return 1

        async def start() -> None:
            asyncio.ensure_future(cache.aget_or_set("pending", never))
            await asyncio.sleep(0.05)

        loop.run_until_complete(start())
        for task in asyncio.all_tasks(loop):
            task.cancel()
        loop.run_until_complete(asyncio.sleep(0))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        return weakref.ref(loop)

    watch = await asyncio.to_thread(run_in_a_loop_of_its_own)
    gc.collect()
    assert watch() is None, "the cache keeps a closed event loop alive"


def test_math_inf_ttl_never_expires(cache: Cache, clock: FakeClock) -> None:
    cache.set("k", 1, ttl=math.inf)
    clock.advance(1e12)
    assert cache.get("k") == 1
    assert cache.ttl_remaining("k") == math.inf
