"""Every row of the SPEC's ConnectionCache table, with its counting rules."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

from pytest_conncache import (
    DEFAULT_TTL,
    CacheStats,
    ConnectionCache,
    connection_cache,
    default_clock,
)
from tests.fakes import FakeClock

pytestmark = [pytest.mark.call_styles, pytest.mark.on_cluster]

# -- construction and defaults -------------------------------------------


def test_default_ttl_constant_is_five_minutes() -> None:
    assert DEFAULT_TTL == 300.0


def test_cache_default_ttl_is_default_ttl_constant() -> None:
    assert ConnectionCache().default_ttl == DEFAULT_TTL


def test_entry_without_ttl_lives_for_the_default_ttl(clock: FakeClock) -> None:
    cache: ConnectionCache[str] = ConnectionCache(clock=clock)
    cache.set("k", "v")
    clock.advance(DEFAULT_TTL - 0.001)
    assert "k" in cache
    clock.advance(0.001)
    assert "k" not in cache


def test_singleton_is_a_connection_cache_with_default_settings() -> None:
    assert isinstance(connection_cache, ConnectionCache)
    assert connection_cache.default_ttl == DEFAULT_TTL
    assert connection_cache.max_entries is None


def test_cache_without_clock_reads_the_default_clock() -> None:
    fake = FakeClock(50.0)
    default_clock.redirect(fake)
    try:
        cache: ConnectionCache[int] = ConnectionCache(10)
        cache.set("k", 1)
        fake.advance(10)
        assert cache.get("k") is None
    finally:
        default_clock.restore()


def test_new_cache_is_empty_with_zeroed_stats(cache: ConnectionCache[Any]) -> None:
    assert cache.size() == 0
    assert len(cache) == 0
    assert cache.keys() == []
    assert cache.stats == CacheStats()


# -- set / get -------------------------------------------------------------


def test_get_returns_the_stored_value(cache: ConnectionCache[Any]) -> None:
    cache.set("user-connections:tok", ["db1", "db2"])
    assert cache.get("user-connections:tok") == ["db1", "db2"]


def test_get_missing_key_returns_none(cache: ConnectionCache[Any]) -> None:
    assert cache.get("missing") is None


def test_get_missing_key_returns_the_given_default(cache: ConnectionCache[Any]) -> None:
    sentinel = object()
    assert cache.get("missing", sentinel) is sentinel


def test_cached_none_is_returned_as_none_not_the_default(cache: ConnectionCache[Any]) -> None:
    cache.set("k", None)
    assert cache.get("k", "default") is None


def test_cached_none_counts_as_a_hit(cache: ConnectionCache[Any]) -> None:
    cache.set("k", None)
    cache.get("k")
    assert cache.stats.hits == 1
    assert cache.stats.misses == 0


def test_set_replaces_the_value(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.set("k", 2)
    assert cache.get("k") == 2
    assert cache.size() == 1


def test_set_restarts_the_ttl(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=10)
    clock.advance(8)
    cache.set("k", 2, ttl=10)
    clock.advance(8)
    assert cache.get("k") == 2


def test_replacing_set_uses_the_new_ttl(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=100)
    cache.set("k", 2, ttl=5)
    clock.advance(5)
    assert cache.get("k") is None


def test_get_of_expired_entry_returns_the_default(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=5)
    clock.advance(6)
    assert cache.get("k", "gone") == "gone"


def test_get_of_expired_entry_removes_it(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=5)
    clock.advance(6)
    cache.get("k")
    assert not cache.has("k")
    assert cache.size() == 0
    assert cache.keys() == []


def test_ttl_none_means_the_cache_default(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=None)
    assert cache.ttl_remaining("k") == cache.default_ttl


def test_values_are_stored_by_reference(memory_cache: ConnectionCache[Any]) -> None:
    # In memory only: the Redis backend stores a serialised copy.
    value: list[str] = []
    memory_cache.set("k", value)
    assert memory_cache.get("k") is value


# -- expiry boundary -----------------------------------------------------------


def test_entry_is_live_just_before_set_time_plus_ttl(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=10)
    clock.advance(9.999)
    assert cache.get("k") == 1


def test_entry_is_expired_exactly_at_set_time_plus_ttl(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=10)
    clock.advance(10)
    assert cache.get("k") is None


def test_contains_is_false_exactly_at_the_boundary(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=10)
    clock.advance(10)
    assert "k" not in cache


def test_ttl_remaining_is_none_exactly_at_the_boundary(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=10)
    clock.advance(10)
    assert cache.ttl_remaining("k") is None


def test_purge_removes_an_entry_exactly_at_the_boundary(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=10)
    clock.advance(10)
    assert cache.purge_expired() == 1


def test_clock_starting_at_zero_still_expires_entries() -> None:
    clock = FakeClock(0.0)
    cache: ConnectionCache[int] = ConnectionCache(10, clock=clock)
    cache.set("k", 1)
    assert cache.get("k") == 1
    clock.advance(10)
    assert cache.get("k") is None


def test_entry_set_at_clock_zero_reports_its_full_ttl() -> None:
    cache: ConnectionCache[int] = ConnectionCache(10, clock=FakeClock(0.0))
    cache.set("k", 1)
    assert cache.ttl_remaining("k") == 10


def test_negative_clock_values_still_expire_entries() -> None:
    clock = FakeClock(-100.0)
    cache: ConnectionCache[int] = ConnectionCache(10, clock=clock)
    cache.set("k", 1)
    clock.advance(9)
    assert cache.get("k") == 1
    clock.advance(1)
    assert cache.get("k") is None


def test_entry_set_at_negative_time_crosses_zero_while_live() -> None:
    clock = FakeClock(-5.0)
    cache: ConnectionCache[int] = ConnectionCache(10, clock=clock)
    cache.set("k", 1)
    clock.advance(5)  # now == 0
    assert cache.ttl_remaining("k") == 5
    assert "k" in cache


def test_integer_clock_values_work(clock: FakeClock) -> None:
    ticks = iter([0, 0, 3, 10])
    cache: ConnectionCache[int] = ConnectionCache(10, clock=lambda: next(ticks))
    cache.set("k", 1)  # reads 0
    assert cache.get("k") == 1  # reads 0
    assert cache.get("k") == 1  # reads 3
    assert cache.get("k") is None  # reads 10


# -- ttl units -----------------------------------------------------------------


def test_timedelta_ttl_on_set(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=timedelta(minutes=2))
    clock.advance(119)
    assert "k" in cache
    clock.advance(1)
    assert "k" not in cache


def test_timedelta_default_ttl_is_stored_in_seconds(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(timedelta(minutes=10), clock=clock)
    assert cache.default_ttl == 600.0


def test_timedelta_with_microseconds(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=timedelta(milliseconds=1500))
    assert cache.ttl_remaining("k") == pytest.approx(1.5)


def test_integer_ttl_is_seconds(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=300)
    clock.advance(299)
    assert "k" in cache
    clock.advance(1)
    assert "k" not in cache


def test_fractional_ttl(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=0.5)
    clock.advance(0.25)
    assert "k" in cache
    clock.advance(0.25)
    assert "k" not in cache


def test_infinite_ttl_never_expires(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=math.inf)
    clock.advance(1e12)
    assert cache.get("k") == 1


def test_infinite_default_ttl_never_expires(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(math.inf, clock=clock)
    cache.set("k", 1)
    clock.advance(1e12)
    assert cache.get("k") == 1


def test_infinite_ttl_entry_is_not_purged(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("k", 1, ttl=math.inf)
    clock.advance(1e12)
    assert cache.purge_expired() == 0
    assert cache.has("k")


def test_huge_integer_ttl_is_accepted_as_never_expiring(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=10**400)
    clock.advance(1e300)
    assert cache.get("k") == 1


# -- invalidate ------------------------------------------------------------------


def test_invalidate_stored_key_returns_true(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    assert cache.invalidate("k") is True


def test_invalidate_missing_key_returns_false(cache: ConnectionCache[Any]) -> None:
    assert cache.invalidate("k") is False


def test_invalidate_removes_the_entry(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.invalidate("k")
    assert cache.get("k") is None
    assert not cache.has("k")


def test_invalidate_twice_returns_false_the_second_time(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.invalidate("k")
    assert cache.invalidate("k") is False


def test_invalidate_expired_but_stored_key_returns_true(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(2)
    assert cache.invalidate("k") is True


def test_invalidate_leaves_other_keys(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    cache.set("b", 2)
    cache.invalidate("a")
    assert cache.keys() == ["b"]


def test_invalidate_counts_one_invalidation(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.invalidate("k")
    assert cache.stats.invalidations == 1


def test_invalidate_of_missing_key_counts_nothing(cache: ConnectionCache[Any]) -> None:
    cache.invalidate("k")
    assert cache.stats == CacheStats()


def test_invalidate_of_expired_entry_counts_an_invalidation_not_an_expiration(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(2)
    cache.invalidate("k")
    assert cache.stats.invalidations == 1
    assert cache.stats.expirations == 0


# -- clear -----------------------------------------------------------------------


def test_clear_removes_everything(cache: ConnectionCache[Any]) -> None:
    for key in ("a", "b", "c"):
        cache.set(key, key)
    cache.clear()
    assert cache.size() == 0
    assert cache.keys() == []
    assert cache.get("a") is None


def test_clear_returns_none(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    assert cache.clear() is None  # type: ignore[func-returns-value]


def test_cache_is_usable_after_clear(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    cache.clear()
    cache.set("a", 2)
    assert cache.get("a") == 2
    assert cache.invalidate_prefix("a") == 1


# -- size / len / has / keys see stored entries -------------------------------------


def test_size_counts_stored_entries(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.size() == 2


def test_len_equals_size(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    cache.set("b", 2)
    assert len(cache) == cache.size() == 2


def test_size_includes_expired_entries_not_yet_removed(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("a", 1, ttl=1)
    cache.set("b", 2, ttl=100)
    clock.advance(5)
    assert cache.size() == 2
    assert len(cache) == 2


def test_has_is_true_for_an_expired_entry_not_yet_removed(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(5)
    assert cache.has("k") is True


def test_has_is_false_for_a_missing_key(cache: ConnectionCache[Any]) -> None:
    assert cache.has("k") is False


def test_keys_include_expired_entries_not_yet_removed(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("a", 1, ttl=1)
    cache.set("b", 2, ttl=100)
    clock.advance(5)
    assert sorted(cache.keys()) == ["a", "b"]


def test_keys_returns_a_list_snapshot(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    keys = cache.keys()
    cache.set("b", 2)
    assert keys == ["a"]
    assert isinstance(keys, list)


def test_keys_and_size_agree(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    for i in range(20):
        cache.set(f"k{i}", i, ttl=1 + i % 3)
    clock.advance(2)
    cache.get("k0")
    assert len(cache.keys()) == cache.size()


# -- `in` is live ---------------------------------------------------------------------


def test_contains_is_true_for_a_live_entry(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    assert "k" in cache


def test_contains_is_false_for_a_missing_key(cache: ConnectionCache[Any]) -> None:
    assert "k" not in cache


def test_contains_is_false_for_an_expired_entry(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(1)
    assert "k" not in cache


def test_contains_does_not_remove_an_expired_entry(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(1)
    assert "k" not in cache
    assert cache.has("k")


def test_contains_is_true_for_a_cached_none(cache: ConnectionCache[Any]) -> None:
    cache.set("k", None)
    assert "k" in cache


# -- ttl_remaining ------------------------------------------------------------------------


def test_ttl_remaining_of_a_fresh_entry_is_its_ttl(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1, ttl=30)
    assert cache.ttl_remaining("k") == 30


def test_ttl_remaining_decreases_with_the_clock(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=30)
    clock.advance(12)
    assert cache.ttl_remaining("k") == 18


def test_ttl_remaining_is_inf_for_a_never_expiring_entry(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1, ttl=math.inf)
    assert cache.ttl_remaining("k") == math.inf


def test_ttl_remaining_is_none_for_a_missing_key(cache: ConnectionCache[Any]) -> None:
    assert cache.ttl_remaining("k") is None


def test_ttl_remaining_is_none_for_an_expired_entry(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(3)
    assert cache.ttl_remaining("k") is None


def test_ttl_remaining_returns_a_float(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1, ttl=30)
    assert isinstance(cache.ttl_remaining("k"), float)


def test_ttl_remaining_does_not_remove_an_expired_entry(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(3)
    cache.ttl_remaining("k")
    assert cache.has("k")


# -- purge_expired -------------------------------------------------------------------------


def test_purge_expired_removes_only_expired_entries(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("old1", 1, ttl=1)
    cache.set("old2", 2, ttl=2)
    cache.set("new", 3, ttl=100)
    clock.advance(5)
    cache.purge_expired()
    assert cache.keys() == ["new"]


def test_purge_expired_returns_how_many_it_removed(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("old1", 1, ttl=1)
    cache.set("old2", 2, ttl=2)
    cache.set("new", 3, ttl=100)
    clock.advance(5)
    assert cache.purge_expired() == 2


def test_purge_expired_with_nothing_expired_returns_zero(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    assert cache.purge_expired() == 0
    assert cache.stats == CacheStats(sets=1)


def test_purge_expired_counts_one_expiration_per_entry(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("a", 1, ttl=1)
    cache.set("b", 2, ttl=1)
    clock.advance(1)
    cache.purge_expired()
    assert cache.stats.expirations == 2
    assert cache.stats.invalidations == 0


def test_purged_keys_no_longer_match_a_prefix(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("user:a", 1, ttl=1)
    cache.set("user:b", 2, ttl=100)
    clock.advance(1)
    cache.purge_expired()
    assert cache.invalidate_prefix("user:") == 1


# -- stats and counting rules -------------------------------------------------------------------


def test_get_of_live_entry_counts_one_hit(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.get("k")
    assert cache.stats == CacheStats(hits=1, sets=1)


def test_get_of_missing_key_counts_one_miss(cache: ConnectionCache[Any]) -> None:
    cache.get("k")
    assert cache.stats == CacheStats(misses=1)


def test_get_of_expired_entry_counts_a_miss_and_an_expiration(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(1)
    cache.get("k")
    assert cache.stats == CacheStats(misses=1, sets=1, expirations=1)


def test_second_get_of_expired_entry_counts_no_second_expiration(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(1)
    cache.get("k")
    cache.get("k")
    assert cache.stats == CacheStats(misses=2, sets=1, expirations=1)


def test_every_set_counts_one_set(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    cache.set("a", 2)
    cache.set("b", 3)
    assert cache.stats.sets == 3


def test_clear_counts_one_invalidation_per_entry(cache: ConnectionCache[Any]) -> None:
    for key in ("a", "b", "c"):
        cache.set(key, 1)
    cache.clear()
    assert cache.stats.invalidations == 3


def test_clear_counts_expired_entries_as_invalidations(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("a", 1, ttl=1)
    cache.set("b", 1, ttl=100)
    clock.advance(5)
    cache.clear()
    assert cache.stats.invalidations == 2
    assert cache.stats.expirations == 0


def test_clear_of_empty_cache_counts_nothing(cache: ConnectionCache[Any]) -> None:
    cache.clear()
    assert cache.stats == CacheStats()


@pytest.mark.parametrize(
    "peek",
    [
        pytest.param(lambda c: c.has("k"), id="has"),
        pytest.param(lambda c: "k" in c, id="contains"),
        pytest.param(lambda c: c.keys(), id="keys"),
        pytest.param(lambda c: c.size(), id="size"),
        pytest.param(lambda c: len(c), id="len"),
        pytest.param(lambda c: c.ttl_remaining("k"), id="ttl_remaining"),
        pytest.param(lambda c: c.stats, id="stats"),
    ],
)
@pytest.mark.parametrize("state", ["live", "expired", "missing"])
def test_peeks_change_no_counter(
    cache: ConnectionCache[Any], clock: FakeClock, peek: Any, state: str
) -> None:
    if state != "missing":
        cache.set("k", 1, ttl=5)
    if state == "expired":
        clock.advance(5)
    before = cache.stats
    peek(cache)
    assert cache.stats == before


def test_stats_is_a_snapshot_not_a_live_view(cache: ConnectionCache[Any]) -> None:
    snapshot = cache.stats
    cache.get("k")
    assert snapshot.misses == 0
    assert cache.stats.misses == 1


def test_stats_snapshot_is_immutable(cache: ConnectionCache[Any]) -> None:
    snapshot = cache.stats
    with pytest.raises(AttributeError):
        snapshot.hits = 5  # type: ignore[misc]


def test_hit_ratio_is_none_with_no_lookups(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    assert cache.stats.hit_ratio is None


def test_hit_ratio_is_hits_over_lookups(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.get("k")
    cache.get("k")
    cache.get("missing")
    assert cache.stats.hit_ratio == pytest.approx(2 / 3)


def test_hit_ratio_is_zero_with_only_misses(cache: ConnectionCache[Any]) -> None:
    cache.get("missing")
    assert cache.stats.hit_ratio == 0.0


def test_hit_ratio_is_one_with_only_hits(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.get("k")
    assert cache.stats.hit_ratio == 1.0


def test_cache_stats_defaults_to_zero() -> None:
    stats = CacheStats()
    assert (stats.hits, stats.misses, stats.sets) == (0, 0, 0)
    assert (stats.invalidations, stats.expirations, stats.evictions) == (0, 0, 0)
    assert stats.hit_ratio is None


def test_reset_stats_zeroes_every_counter(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("a", 1, ttl=1)
    cache.set("b", 1)
    cache.get("b")
    cache.get("missing")
    clock.advance(1)
    cache.get("a")
    cache.invalidate("b")
    cache.reset_stats()
    assert cache.stats == CacheStats()


def test_reset_stats_keeps_the_entries(cache: ConnectionCache[Any]) -> None:
    cache.set("a", 1)
    cache.reset_stats()
    assert cache.get("a") == 1
    assert cache.stats == CacheStats(hits=1)


def test_caches_count_independently(clock: FakeClock) -> None:
    one: ConnectionCache[int] = ConnectionCache(clock=clock)
    two: ConnectionCache[int] = ConnectionCache(clock=clock)
    one.set("k", 1)
    one.get("k")
    assert two.stats == CacheStats()


def test_a_set_replacing_an_expired_entry_counts_its_expiration() -> None:
    clock = FakeClock()
    cache: ConnectionCache[Any] = ConnectionCache(10, clock=clock)
    cache.set("session:1", "old")
    clock.advance(10)

    cache.set("session:1", "new")

    assert cache.stats.expirations == 1
    assert cache.stats.sets == 2
    assert cache.get("session:1") == "new"
    assert cache.last_removal("session:1") is None  # stored again: not "removed"
