"""max_entries: expired entries go first, then the least recently used; memory stays bounded."""

from __future__ import annotations

import gc
import math
import tracemalloc
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache
from tests.fakes import FakeClock


@pytest.fixture
def small(clock: FakeClock) -> ConnectionCache[Any]:
    return ConnectionCache(100, clock=clock, max_entries=3)


def fill(cache: ConnectionCache[Any], *keys: str) -> None:
    for key in keys:
        cache.set(key, key)


def test_max_entries_is_exposed(small: ConnectionCache[Any]) -> None:
    assert small.max_entries == 3


def test_unbounded_by_default(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock)
    for i in range(5000):
        cache.set(f"k{i}", i)
    assert cache.max_entries is None
    assert cache.size() == 5000
    assert cache.stats.evictions == 0


def test_cache_may_fill_up_to_max_entries(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    assert small.size() == 3
    assert small.stats.evictions == 0


def test_new_key_past_the_bound_evicts_the_least_recently_set(
    small: ConnectionCache[Any],
) -> None:
    fill(small, "a", "b", "c", "d")
    assert sorted(small.keys()) == ["b", "c", "d"]


def test_size_never_exceeds_max_entries(small: ConnectionCache[Any]) -> None:
    for i in range(50):
        small.set(f"k{i}", i)
        assert small.size() <= 3


def test_eviction_counts_one_eviction(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c", "d", "e")
    assert small.stats == CacheStats(sets=5, evictions=2)


def test_get_refreshes_recency(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    small.get("a")
    small.set("d", "d")
    assert sorted(small.keys()) == ["a", "c", "d"]


def test_get_or_set_hit_refreshes_recency(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    small.get_or_set("a", lambda: "unused")
    small.set("d", "d")
    assert sorted(small.keys()) == ["a", "c", "d"]


def test_set_of_existing_key_refreshes_recency(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    small.set("a", "again")
    small.set("d", "d")
    assert sorted(small.keys()) == ["a", "c", "d"]


def test_miss_does_not_change_recency(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    small.get("zzz")
    small.set("d", "d")
    assert sorted(small.keys()) == ["b", "c", "d"]


@pytest.mark.parametrize(
    "peek",
    [
        pytest.param(lambda c: c.has("a"), id="has"),
        pytest.param(lambda c: "a" in c, id="contains"),
        pytest.param(lambda c: c.ttl_remaining("a"), id="ttl_remaining"),
        pytest.param(lambda c: c.keys(), id="keys"),
        pytest.param(lambda c: c.size(), id="size"),
    ],
)
def test_peeks_do_not_refresh_recency(small: ConnectionCache[Any], peek: Any) -> None:
    fill(small, "a", "b", "c")
    peek(small)
    small.set("d", "d")
    assert sorted(small.keys()) == ["b", "c", "d"]


def test_replacing_a_key_in_a_full_cache_evicts_nothing(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    small.set("b", "new")
    assert sorted(small.keys()) == ["a", "b", "c"]
    assert small.stats.evictions == 0


def test_evicted_key_reads_as_a_miss_not_an_expiration(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c", "d")
    assert small.get("a") is None
    assert small.stats == CacheStats(sets=4, evictions=1, misses=1)


def test_evicted_key_is_not_found_by_prefix(small: ConnectionCache[Any]) -> None:
    fill(small, "k:a", "k:b", "k:c", "k:d")
    assert small.invalidate_prefix("k:") == 3


def test_expired_entry_goes_before_the_least_recently_used(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=100)
    small.set("b", "b", ttl=100)
    small.set("c", "c", ttl=1)  # most recently used, but it expires
    clock.advance(1)
    small.set("d", "d")
    assert sorted(small.keys()) == ["a", "b", "d"]


def test_making_room_from_an_expired_entry_counts_an_expiration(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=100)
    small.set("b", "b", ttl=100)
    small.set("c", "c", ttl=1)
    clock.advance(1)
    small.set("d", "d")
    assert small.stats == CacheStats(sets=4, expirations=1)


def test_making_room_removes_every_expired_entry(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    # Design: once room must be made, all expired entries go at once.
    small.set("a", "a", ttl=1)
    small.set("b", "b", ttl=2)
    small.set("c", "c", ttl=100)
    clock.advance(5)
    small.set("d", "d")
    assert sorted(small.keys()) == ["c", "d"]
    assert small.stats.expirations == 2
    assert small.stats.evictions == 0


def test_entry_exactly_at_its_expiry_is_treated_as_expired_when_making_room(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=100)
    small.set("b", "b", ttl=5)
    small.set("c", "c", ttl=100)
    clock.advance(5)
    small.set("d", "d")
    assert sorted(small.keys()) == ["a", "c", "d"]
    assert small.stats.expirations == 1


def test_entry_just_before_expiry_is_evicted_by_recency_only(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=100)
    small.set("b", "b", ttl=5)
    small.set("c", "c", ttl=100)
    clock.advance(4.5)
    small.set("d", "d")
    assert sorted(small.keys()) == ["b", "c", "d"]
    assert small.stats.evictions == 1


def test_no_expired_entry_is_made_room_for_before_the_cache_is_full(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=1)
    clock.advance(5)
    small.set("b", "b")
    assert small.has("a")
    assert small.stats.expirations == 0


def test_replaced_entry_uses_its_new_expiry_when_making_room(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=1)
    small.set("a", "a", ttl=100)  # the old expiry no longer applies
    small.set("b", "b", ttl=100)
    small.set("c", "c", ttl=100)
    clock.advance(5)
    small.get("a")
    small.set("d", "d")
    assert sorted(small.keys()) == ["a", "c", "d"]
    assert small.stats.expirations == 0
    assert small.stats.evictions == 1


def test_shortened_ttl_counts_when_making_room(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=100)
    small.set("a", "a", ttl=1)
    small.set("b", "b", ttl=100)
    small.set("c", "c", ttl=100)
    clock.advance(5)
    small.set("d", "d")
    assert sorted(small.keys()) == ["b", "c", "d"]
    assert small.stats.expirations == 1


def test_infinite_ttl_entries_are_evicted_by_recency(
    small: ConnectionCache[Any], clock: FakeClock
) -> None:
    small.set("a", "a", ttl=math.inf)
    small.set("b", "b", ttl=math.inf)
    small.set("c", "c", ttl=math.inf)
    clock.advance(1e9)
    small.set("d", "d", ttl=math.inf)
    assert sorted(small.keys()) == ["b", "c", "d"]
    assert small.stats.evictions == 1


def test_invalidated_entries_free_their_slot(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    small.invalidate("a")
    small.set("d", "d")
    assert sorted(small.keys()) == ["b", "c", "d"]
    assert small.stats.evictions == 0


def test_purged_entries_free_their_slot(small: ConnectionCache[Any], clock: FakeClock) -> None:
    small.set("a", "a", ttl=1)
    fill(small, "b", "c")
    clock.advance(1)
    small.purge_expired()
    small.set("d", "d")
    assert small.stats == CacheStats(sets=4, expirations=1)


def test_max_entries_one_keeps_only_the_newest(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=1)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.keys() == ["b"]
    assert cache.get("b") == 2


def test_get_or_set_miss_in_a_full_cache_evicts(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    assert small.get_or_set("d", lambda: "d") == "d"
    assert sorted(small.keys()) == ["b", "c", "d"]
    assert small.stats.evictions == 1


def test_clear_then_refill_evicts_from_the_new_entries(small: ConnectionCache[Any]) -> None:
    fill(small, "a", "b", "c")
    small.clear()
    fill(small, "x", "y", "z", "w")
    assert sorted(small.keys()) == ["w", "y", "z"]


def test_many_replacements_keep_expiry_order_right(clock: FakeClock) -> None:
    # Thousands of replacements leave old expiry records behind; the newest one counts.
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=10)
    for round_ in range(500):
        for i in range(10):
            cache.set(f"k{i}", round_, ttl=1 if i < 4 else 1000)
    clock.advance(2)
    cache.set("new", 0)
    assert cache.stats.expirations == 4
    assert cache.stats.evictions == 0
    assert sorted(cache.keys()) == sorted(["new"] + [f"k{i}" for i in range(4, 10)])


def test_lru_order_across_many_keys(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=100)
    for i in range(100):
        cache.set(f"k{i}", i)
    for i in range(0, 100, 2):
        cache.get(f"k{i}")  # even keys are now the most recent
    for i in range(50):
        cache.set(f"n{i}", i)
    assert sorted(cache.keys()) == sorted(
        [f"k{i}" for i in range(0, 100, 2)] + [f"n{i}" for i in range(50)]
    )
    assert cache.stats.evictions == 50


def _churn(cache: ConnectionCache[int], clock: FakeClock, start: int, stop: int) -> None:
    for i in range(start, stop):
        # A quarter of the keys never expire; the rest live 1 to 49 seconds.
        ttl = math.inf if i % 4 == 0 else 1 + i % 49
        cache.set(f"user-record:{i}:{i % 97}", i, ttl=ttl)
        if i % 3 == 0:
            cache.get(f"user-record:{i - 7}:{(i - 7) % 97}")
        clock.advance(0.01)


def test_memory_stays_flat_under_endless_churn(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=1000)
    tracemalloc.start()
    try:
        _churn(cache, clock, 0, 12_000)  # warm up: every bounded structure is full
        gc.collect()
        warm, _ = tracemalloc.get_traced_memory()
        _churn(cache, clock, 12_000, 100_000)
        gc.collect()
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert cache.size() <= 1000
    # 88k more keys went through; an unbounded structure would grow by megabytes.
    assert after - warm < 256 * 1024, f"grew by {after - warm} bytes"


def test_stats_add_up_under_churn(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=50)
    for i in range(10_000):
        cache.set(f"k{i}", i, ttl=1 + i % 5)
        clock.advance(0.1)
    stats = cache.stats
    assert stats.sets == 10_000
    assert stats.evictions + stats.expirations == 10_000 - cache.size()
