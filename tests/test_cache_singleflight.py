"""get_or_set: cache-aside with one factory call per missing key, shared across threads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache
from tests.fakes import FakeClock
from tests.threadutil import WAIT_LIMIT, Worker, wait_until, wait_until_waiting_on_flight

pytestmark = pytest.mark.on_cluster


class Boom(Exception):
    pass


class BlockingFactory:
    """A factory that signals when it starts and returns only once released."""

    def __init__(self, value: Any = "fresh", error: BaseException | None = None) -> None:
        self.value = value
        self.error = error
        self.calls = 0
        self.started = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> Any:
        self.calls += 1
        self.started.set()
        if not self.release.wait(WAIT_LIMIT):
            raise AssertionError("factory was never released")
        if self.error is not None:
            raise self.error
        return self.value


def start_leader(cache: ConnectionCache[Any], key: str, factory: BlockingFactory) -> Worker:
    leader = Worker(lambda: cache.get_or_set(key, factory))
    leader.start()
    assert factory.started.wait(WAIT_LIMIT)
    return leader


def start_waiters(
    cache: ConnectionCache[Any], key: str, factory: Callable[[], Any], n: int
) -> list[Worker]:
    waiters = [Worker(lambda: cache.get_or_set(key, factory)) for _ in range(n)]
    for waiter in waiters:
        waiter.start()
    wait_until_waiting_on_flight(waiters)
    return waiters


# -- one caller --------------------------------------------------------------------


def test_miss_calls_the_factory_and_returns_its_value(cache: ConnectionCache[Any]) -> None:
    assert cache.get_or_set("k", lambda: "made") == "made"


def test_miss_stores_the_factory_value(cache: ConnectionCache[Any]) -> None:
    cache.get_or_set("k", lambda: "made")
    assert cache.get("k") == "made"


def test_miss_counts_one_miss_and_one_set(cache: ConnectionCache[Any]) -> None:
    cache.get_or_set("k", lambda: "made")
    assert cache.stats == CacheStats(misses=1, sets=1)


def test_hit_returns_the_cached_value_without_calling_the_factory(
    cache: ConnectionCache[Any],
) -> None:
    cache.set("k", "cached")
    calls: list[int] = []
    assert cache.get_or_set("k", lambda: calls.append(1)) == "cached"
    assert calls == []


def test_hit_counts_one_hit(cache: ConnectionCache[Any]) -> None:
    cache.set("k", "cached")
    cache.get_or_set("k", lambda: "unused")
    assert cache.stats == CacheStats(hits=1, sets=1)


def test_expired_entry_counts_miss_expiration_and_set(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", "old", ttl=1)
    clock.advance(1)
    assert cache.get_or_set("k", lambda: "new") == "new"
    assert cache.stats == CacheStats(misses=1, sets=2, expirations=1)


def test_factory_is_called_once_across_sequential_calls(cache: ConnectionCache[Any]) -> None:
    calls: list[int] = []

    def factory() -> int:
        calls.append(1)
        return len(calls)

    assert [cache.get_or_set("k", factory) for _ in range(5)] == [1] * 5
    assert calls == [1]


def test_factory_value_none_is_cached(cache: ConnectionCache[Any]) -> None:
    calls: list[int] = []

    def factory() -> None:
        calls.append(1)

    cache.get_or_set("k", factory)
    cache.get_or_set("k", factory)
    assert calls == [1]
    assert cache.stats == CacheStats(hits=1, misses=1, sets=1)


def test_ttl_argument_applies_to_the_stored_value(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.get_or_set("k", lambda: 1, ttl=3)
    assert cache.ttl_remaining("k") == 3


def test_default_ttl_applies_without_ttl_argument(cache: ConnectionCache[Any]) -> None:
    cache.get_or_set("k", lambda: 1)
    assert cache.ttl_remaining("k") == cache.default_ttl


def test_factory_is_called_again_after_expiry(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    values = iter([1, 2])
    cache.get_or_set("k", lambda: next(values), ttl=5)
    clock.advance(5)
    assert cache.get_or_set("k", lambda: next(values), ttl=5) == 2


def test_factory_exception_propagates(cache: ConnectionCache[Any]) -> None:
    def factory() -> Any:
        raise Boom("down")

    with pytest.raises(Boom, match="down"):
        cache.get_or_set("k", factory)


def test_factory_exception_is_not_cached(cache: ConnectionCache[Any]) -> None:
    def failing() -> Any:
        raise Boom

    with pytest.raises(Boom):
        cache.get_or_set("k", failing)
    assert not cache.has("k")
    assert cache.get_or_set("k", lambda: "recovered") == "recovered"


def test_factory_exception_counts_a_miss_and_no_set(cache: ConnectionCache[Any]) -> None:
    def failing() -> Any:
        raise Boom

    with pytest.raises(Boom):
        cache.get_or_set("k", failing)
    assert cache.stats == CacheStats(misses=1)


def test_factory_may_use_the_cache_for_other_keys(cache: ConnectionCache[Any]) -> None:
    def outer() -> str:
        return "outer+" + str(cache.get_or_set("inner", lambda: "inner"))

    assert cache.get_or_set("outer", outer) == "outer+inner"
    assert cache.get("inner") == "inner"


def test_factory_exception_in_a_bounded_cache_leaves_it_unchanged(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=2)
    cache.set("a", 1)
    cache.set("b", 2)

    def failing() -> int:
        raise Boom

    with pytest.raises(Boom):
        cache.get_or_set("c", failing)
    assert sorted(cache.keys()) == ["a", "b"]
    assert cache.stats.evictions == 0


# -- many threads, one key -------------------------------------------------------------


def test_concurrent_callers_share_one_factory_call(cache: ConnectionCache[Any]) -> None:
    factory = BlockingFactory("shared")
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 5)
    factory.release.set()
    assert [w.finish() for w in [leader, *waiters]] == ["shared"] * 6
    assert factory.calls == 1


def test_waiters_receive_the_very_same_object(cache: ConnectionCache[Any]) -> None:
    value = {"id": 1}  # JSON-serialisable, so the Redis backend can store it too
    factory = BlockingFactory(value)
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 3)
    factory.release.set()
    assert all(w.finish() is value for w in [leader, *waiters])


def test_waiters_are_counted_as_hits(cache: ConnectionCache[Any]) -> None:
    factory = BlockingFactory()
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 4)
    factory.release.set()
    for worker in [leader, *waiters]:
        worker.finish()
    assert cache.stats == CacheStats(hits=4, misses=1, sets=1)


def test_shared_value_is_stored_once(cache: ConnectionCache[Any]) -> None:
    factory = BlockingFactory("shared")
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 3)
    factory.release.set()
    for worker in [leader, *waiters]:
        worker.finish()
    assert cache.get("k") == "shared"
    assert cache.stats.sets == 1


def test_factory_exception_reaches_every_waiter(cache: ConnectionCache[Any]) -> None:
    error = Boom("backend down")
    factory = BlockingFactory(error=error)
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 4)
    factory.release.set()
    for worker in [leader, *waiters]:
        worker.finish()
    assert all(w.error is error for w in [leader, *waiters])
    assert factory.calls == 1


def test_shared_factory_exception_is_not_cached(cache: ConnectionCache[Any]) -> None:
    factory = BlockingFactory(error=Boom())
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 2)
    factory.release.set()
    for worker in [leader, *waiters]:
        worker.finish()
    assert not cache.has("k")
    assert cache.get_or_set("k", lambda: "retry") == "retry"


def test_waiters_of_a_failed_factory_count_as_misses(cache: ConnectionCache[Any]) -> None:
    # Decision: a waiter that was served an exception found no live entry: one miss.
    factory = BlockingFactory(error=Boom())
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 3)
    factory.release.set()
    for worker in [leader, *waiters]:
        worker.finish()
    assert cache.stats == CacheStats(misses=4)


def test_different_keys_do_not_wait_for_each_other(cache: ConnectionCache[Any]) -> None:
    factory = BlockingFactory("slow")
    leader = start_leader(cache, "slow", factory)
    try:
        assert cache.get_or_set("fast", lambda: "quick") == "quick"
    finally:
        factory.release.set()
    assert leader.finish() == "slow"


def test_plain_get_during_a_running_factory_is_a_miss(cache: ConnectionCache[Any]) -> None:
    factory = BlockingFactory("slow")
    leader = start_leader(cache, "k", factory)
    try:
        assert cache.get("k") is None
    finally:
        factory.release.set()
    leader.finish()
    assert cache.stats == CacheStats(misses=2, sets=1)


# -- writes while a factory runs ----------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c.invalidate("user:k"), id="invalidate"),
        pytest.param(lambda c: c.invalidate_pattern("^user:"), id="invalidate_pattern"),
        pytest.param(lambda c: c.invalidate_prefix("user:"), id="invalidate_prefix"),
        pytest.param(lambda c: c.clear(), id="clear"),
    ],
)
def test_key_invalidated_while_its_factory_runs_is_not_stored(
    cache: ConnectionCache[Any], change: Callable[[ConnectionCache[Any]], object]
) -> None:
    factory = BlockingFactory("stale")
    leader = start_leader(cache, "user:k", factory)
    change(cache)
    factory.release.set()
    assert leader.finish() == "stale"  # the caller still gets its answer
    assert not cache.has("user:k")
    assert cache.stats.sets == 0


def test_key_set_while_its_factory_runs_keeps_the_newer_value(
    cache: ConnectionCache[Any],
) -> None:
    factory = BlockingFactory("stale")
    leader = start_leader(cache, "k", factory)
    cache.set("k", "newer")
    factory.release.set()
    leader.finish()
    assert cache.get("k") == "newer"
    assert cache.stats.sets == 1


def test_invalidating_another_key_does_not_stop_the_store(cache: ConnectionCache[Any]) -> None:
    factory = BlockingFactory("fresh")
    leader = start_leader(cache, "user:k", factory)
    cache.set("user:other", 1)
    cache.invalidate("user:other")
    cache.invalidate_prefix("admin:")
    factory.release.set()
    leader.finish()
    assert cache.get("user:k") == "fresh"


def test_a_pattern_matching_another_key_does_not_stop_the_store_in_memory(
    memory_cache: ConnectionCache[Any],
) -> None:
    # On Redis a pattern invalidation stops every running store instead: a
    # pattern cannot be matched there against keys that are not stored yet
    # (tests/redis/test_redis_stale_writes.py).
    factory = BlockingFactory("fresh")
    leader = start_leader(memory_cache, "user:k", factory)
    memory_cache.invalidate_pattern("^other")
    factory.release.set()
    leader.finish()
    assert memory_cache.get("user:k") == "fresh"


def test_waiters_of_an_invalidated_flight_still_get_its_value(
    cache: ConnectionCache[Any],
) -> None:
    factory = BlockingFactory("stale")
    leader = start_leader(cache, "k", factory)
    waiters = start_waiters(cache, "k", factory, 2)
    cache.invalidate("k")
    factory.release.set()
    assert [w.finish() for w in [leader, *waiters]] == ["stale"] * 3
    assert not cache.has("k")


def test_caller_after_an_invalidation_does_not_join_the_stale_call(
    cache: ConnectionCache[Any],
) -> None:
    old = BlockingFactory("before-update")
    leader = start_leader(cache, "k", old)
    cache.invalidate("k")  # e.g. after a write to the database
    try:
        later = Worker(lambda: cache.get_or_set("k", lambda: "after-update"))
        later.start()
        wait_until(lambda: not later.is_alive(), "the later caller to finish on its own")
        assert later.finish() == "after-update"
    finally:
        old.release.set()
    assert leader.finish() == "before-update"
    assert cache.get("k") == "after-update"


def test_fresh_call_after_invalidation_is_shared_by_later_callers(
    cache: ConnectionCache[Any],
) -> None:
    old = BlockingFactory("before")
    leader = start_leader(cache, "k", old)
    cache.invalidate("k")
    new = BlockingFactory("after")
    try:
        second = start_leader(cache, "k", new)
        waiters = start_waiters(cache, "k", new, 2)
        new.release.set()
        assert [w.finish() for w in [second, *waiters]] == ["after"] * 3
    finally:
        old.release.set()
    leader.finish()
    assert new.calls == 1
    assert cache.get("k") == "after"


# -- a factory that asks for its own key ------------------------------------------------


def test_a_factory_asking_for_its_own_key_raises_instead_of_hanging(
    cache: ConnectionCache[Any],
) -> None:
    def factory() -> int:
        return int(cache.get_or_set("k", lambda: 1))

    # In a worker thread, so that a regression hangs the worker, not the suite.
    worker = Worker(lambda: cache.get_or_set("k", factory))
    worker.start()
    worker.finish()
    assert isinstance(worker.error, RecursionError)
    assert "get_or_set('k')" in str(worker.error)
    assert "k" not in cache
    assert cache.get_or_set("k", lambda: 2) == 2  # the key works again afterwards
