"""The pluggy observer interface: every cache event reaches registered observers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache, hookimpl, observers
from tests.callstyles import unwrapped
from tests.fakes import FakeClock

pytestmark = pytest.mark.call_styles


class Recorder:
    """Records every hook call as (event, key) or (event, key, how), for one cache."""

    def __init__(self, cache: ConnectionCache[Any] | None = None) -> None:
        self.cache = None if cache is None else unwrapped(cache)
        self.events: list[tuple[str, ...]] = []
        self.caches: list[ConnectionCache[Any]] = []

    def _add(self, cache: ConnectionCache[Any], *event: str) -> None:
        if self.cache is None or cache is self.cache:
            self.caches.append(cache)
            self.events.append(event)

    @hookimpl
    def conncache_hit(self, cache: ConnectionCache[Any], key: str) -> None:
        self._add(cache, "hit", key)

    @hookimpl
    def conncache_miss(self, cache: ConnectionCache[Any], key: str) -> None:
        self._add(cache, "miss", key)

    @hookimpl
    def conncache_set(self, cache: ConnectionCache[Any], key: str) -> None:
        self._add(cache, "set", key)

    @hookimpl
    def conncache_invalidation(self, cache: ConnectionCache[Any], key: str, how: str) -> None:
        self._add(cache, "invalidation", key, how)

    @hookimpl
    def conncache_expiration(self, cache: ConnectionCache[Any], key: str) -> None:
        self._add(cache, "expiration", key)

    @hookimpl
    def conncache_eviction(self, cache: ConnectionCache[Any], key: str) -> None:
        self._add(cache, "eviction", key)


@pytest.fixture
def recorder(cache: ConnectionCache[Any]) -> Iterator[Recorder]:
    rec = Recorder(cache)
    observers.register(rec)
    try:
        yield rec
    finally:
        observers.unregister(rec)


def test_hit_is_reported_with_cache_and_key(
    cache: ConnectionCache[Any], recorder: Recorder
) -> None:
    cache.set("k", 1)
    recorder.events.clear()
    cache.get("k")
    assert recorder.events == [("hit", "k")]
    assert recorder.caches[-1] is unwrapped(cache)


def test_miss_is_reported(cache: ConnectionCache[Any], recorder: Recorder) -> None:
    cache.get("k")
    assert recorder.events == [("miss", "k")]


def test_set_is_reported(cache: ConnectionCache[Any], recorder: Recorder) -> None:
    cache.set("k", 1)
    cache.set("k", 2)
    assert recorder.events == [("set", "k"), ("set", "k")]


def test_expired_read_reports_expiration_then_miss(
    cache: ConnectionCache[Any], clock: FakeClock, recorder: Recorder
) -> None:
    cache.set("k", 1, ttl=1)
    clock.advance(1)
    recorder.events.clear()
    cache.get("k")
    assert recorder.events == [("expiration", "k"), ("miss", "k")]


def test_purge_reports_each_expiration(
    cache: ConnectionCache[Any], clock: FakeClock, recorder: Recorder
) -> None:
    cache.set("a", 1, ttl=1)
    cache.set("b", 1, ttl=1)
    cache.set("c", 1, ttl=100)
    clock.advance(1)
    recorder.events.clear()
    cache.purge_expired()
    assert sorted(recorder.events) == [("expiration", "a"), ("expiration", "b")]


@pytest.mark.parametrize(
    ("call", "how"),
    [
        (lambda c: c.invalidate("user:a"), "invalidate"),
        (lambda c: c.invalidate_pattern("^user:a$"), "invalidate_pattern"),
        (lambda c: c.invalidate_prefix("user:a"), "invalidate_prefix"),
    ],
)
def test_invalidation_is_reported_with_the_removing_call(
    cache: ConnectionCache[Any], recorder: Recorder, call: Any, how: str
) -> None:
    cache.set("user:a", 1)
    recorder.events.clear()
    call(cache)
    assert recorder.events == [("invalidation", "user:a", how)]


def test_clear_reports_one_invalidation_per_entry(
    cache: ConnectionCache[Any], recorder: Recorder
) -> None:
    cache.set("a", 1)
    cache.set("b", 2)
    recorder.events.clear()
    cache.clear()
    assert sorted(recorder.events) == [
        ("invalidation", "a", "clear"),
        ("invalidation", "b", "clear"),
    ]


def test_invalidating_a_missing_key_reports_nothing(
    cache: ConnectionCache[Any], recorder: Recorder
) -> None:
    cache.invalidate("k")
    cache.invalidate_prefix("k")
    cache.invalidate_pattern("k")
    cache.clear()
    assert recorder.events == []


def test_eviction_is_reported(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=1)
    rec = Recorder(cache)
    observers.register(rec)
    try:
        cache.set("a", 1)
        cache.set("b", 2)
    finally:
        observers.unregister(rec)
    assert rec.events == [("set", "a"), ("eviction", "a"), ("set", "b")]


def test_making_room_from_an_expired_entry_reports_expiration(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=1)
    rec = Recorder(cache)
    observers.register(rec)
    try:
        cache.set("a", 1, ttl=1)
        clock.advance(1)
        cache.set("b", 2)
    finally:
        observers.unregister(rec)
    assert rec.events == [("set", "a"), ("expiration", "a"), ("set", "b")]


def test_get_or_set_reports_miss_then_set(cache: ConnectionCache[Any], recorder: Recorder) -> None:
    cache.get_or_set("k", lambda: 1)
    assert recorder.events == [("miss", "k"), ("set", "k")]


def test_get_or_set_hit_is_reported(cache: ConnectionCache[Any], recorder: Recorder) -> None:
    cache.set("k", 1)
    recorder.events.clear()
    cache.get_or_set("k", lambda: 2)
    assert recorder.events == [("hit", "k")]


def test_peeks_report_nothing(
    cache: ConnectionCache[Any], clock: FakeClock, recorder: Recorder
) -> None:
    cache.set("live", 1)
    cache.set("old", 1, ttl=1)
    clock.advance(1)
    recorder.events.clear()
    for key in ("live", "old", "missing"):
        cache.has(key)
        _ = key in cache
        cache.ttl_remaining(key)
    cache.keys()
    cache.size()
    _ = cache.stats
    assert recorder.events == []


def test_hooks_agree_with_the_stats(
    cache: ConnectionCache[Any], clock: FakeClock, recorder: Recorder
) -> None:
    cache.set("a", 1, ttl=1)
    cache.set("b", 2)
    cache.get("b")
    cache.get("zz")
    clock.advance(1)
    cache.get("a")
    cache.invalidate_prefix("b")
    kinds = [event[0] for event in recorder.events]
    stats = cache.stats
    assert (kinds.count("hit"), kinds.count("miss"), kinds.count("set")) == (
        stats.hits,
        stats.misses,
        stats.sets,
    )
    assert (kinds.count("invalidation"), kinds.count("expiration")) == (
        stats.invalidations,
        stats.expirations,
    )


def test_every_cache_reports_to_the_same_observer(clock: FakeClock) -> None:
    one: ConnectionCache[int] = ConnectionCache(clock=clock)
    two: ConnectionCache[int] = ConnectionCache(clock=clock)
    rec = Recorder()
    observers.register(rec)
    try:
        one.get("x")
        two.get("y")
    finally:
        observers.unregister(rec)
    pairs = [(c, e) for c, e in zip(rec.caches, rec.events, strict=True) if c is one or c is two]
    assert pairs == [(one, ("miss", "x")), (two, ("miss", "y"))]


def test_observer_may_implement_a_subset_of_hooks_and_arguments(
    cache: ConnectionCache[Any],
) -> None:
    seen: list[str] = []

    class KeysOnly:
        @hookimpl
        def conncache_miss(self, key: str) -> None:
            seen.append(key)

    observer = KeysOnly()
    observers.register(observer)
    try:
        cache.set("a", 1)
        cache.get("a")
        cache.get("b")
    finally:
        observers.unregister(observer)
    assert seen == ["b"]


def test_two_observers_both_hear_every_event(cache: ConnectionCache[Any]) -> None:
    first, second = Recorder(cache), Recorder(cache)
    observers.register(first)
    observers.register(second)
    try:
        cache.get("k")
    finally:
        observers.unregister(first)
        observers.unregister(second)
    assert first.events == second.events == [("miss", "k")]


def test_unregistered_observer_hears_nothing_more(cache: ConnectionCache[Any]) -> None:
    rec = Recorder(cache)
    observers.register(rec)
    try:
        cache.get("a")
    finally:
        observers.unregister(rec)
    cache.get("b")
    assert rec.events == [("miss", "a")]


def test_hooked_is_true_only_while_an_observer_is_registered() -> None:
    baseline = bool(observers.get_plugins())  # e.g. the plugin's families counter
    # The plugin's event ring keeps caches active, without hook calls.
    active_after = baseline or observers.ring is not None
    assert observers.hooked is baseline
    rec = Recorder()
    observers.register(rec)
    try:
        assert observers.hooked is True
        assert observers.active is True
    finally:
        observers.unregister(rec)
    assert observers.hooked is baseline
    assert observers.active is active_after


def test_active_stays_true_while_another_observer_remains() -> None:
    first, second = Recorder(), Recorder()
    observers.register(first)
    try:
        observers.register(second)
        observers.unregister(second)
        assert observers.active is True
    finally:
        observers.unregister(first)


def test_observer_may_read_the_cache_from_inside_a_hook(cache: ConnectionCache[Any]) -> None:
    seen: list[CacheStats] = []

    class Reader:
        @hookimpl
        def conncache_hit(self, cache: ConnectionCache[Any], key: str) -> None:
            seen.append(cache.stats)
            cache.has(key)

    reader = Reader()
    observers.register(reader)
    try:
        cache.set("k", 1)
        cache.get("k")
    finally:
        observers.unregister(reader)
    assert seen == [CacheStats(hits=1, sets=1)]


def test_events_arrive_in_the_order_of_the_calls(
    cache: ConnectionCache[Any], clock: FakeClock, recorder: Recorder
) -> None:
    # One contract on every store and call style: each event is reported
    # right after the store call that caused it, under the cache's lock.
    cache.get("a")
    cache.set("a", 1)
    cache.get("a")
    cache.get_or_set("b", lambda: 2)
    cache.set("c", 3, ttl=1)
    clock.advance(2)
    cache.get("c")
    cache.invalidate("a")
    cache.invalidate_prefix("b")
    assert recorder.events == [
        ("miss", "a"),
        ("set", "a"),
        ("hit", "a"),
        ("miss", "b"),
        ("set", "b"),
        ("set", "c"),
        ("expiration", "c"),
        ("miss", "c"),
        ("invalidation", "a", "invalidate"),
        ("invalidation", "b", "invalidate_prefix"),
    ]
