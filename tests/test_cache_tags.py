"""Tags: labels on entries, removed together by invalidate_tag / invalidate_tags."""

from __future__ import annotations

import gc
import resource
import threading
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache, hookimpl, observers
from tests.callstyles import unwrapped
from tests.fakes import FakeClock
from tests.threadutil import WAIT_LIMIT, Worker

pytestmark = [pytest.mark.call_styles, pytest.mark.on_cluster]

Cache = ConnectionCache[Any]


def test_invalidate_tag_removes_every_entry_carrying_it(cache: Cache) -> None:
    cache.set("user-connections:abc", [1], tags=["user:abc"])
    cache.set("user-record:abc:1", {"a": 1}, tags=["user:abc", "records"])
    cache.set("user-record:def:1", {"b": 2}, tags=["user:def", "records"])
    assert cache.invalidate_tag("user:abc") == 2
    assert sorted(cache.keys()) == ["user-record:def:1"]


def test_invalidate_tag_counts_invalidations(cache: Cache) -> None:
    cache.set("a", 1, tags=["t"])
    cache.set("b", 2, tags=["t"])
    cache.invalidate_tag("t")
    assert cache.stats == CacheStats(sets=2, invalidations=2)


def test_an_entry_with_several_tags_is_removed_once(cache: Cache) -> None:
    cache.set("a", 1, tags=["t", "u"])
    cache.set("b", 2, tags=["u"])
    assert cache.invalidate_tags(["t", "u"]) == 2
    assert cache.stats.invalidations == 2


def test_invalidate_tag_of_an_unknown_tag_removes_nothing(cache: Cache) -> None:
    cache.set("a", 1, tags=["t"])
    assert cache.invalidate_tag("nobody") == 0
    assert cache.keys() == ["a"]


def test_set_many_tags_every_entry(cache: Cache) -> None:
    cache.set_many({"a": 1, "b": 2}, tags=["batch"])
    cache.set("c", 3)
    assert cache.invalidate_tag("batch") == 2
    assert cache.keys() == ["c"]


def test_get_or_set_tags_the_entry_it_stores(cache: Cache) -> None:
    cache.get_or_set("a", lambda: 1, tags=["t"])
    assert cache.invalidate_tag("t") == 1
    assert not cache.has("a")


def test_replacing_an_entry_replaces_its_tags(cache: Cache) -> None:
    cache.set("a", 1, tags=["old"])
    cache.set("a", 2, tags=["new"])
    assert cache.invalidate_tag("old") == 0
    assert cache.get("a") == 2
    assert cache.invalidate_tag("new") == 1


def test_replacing_a_tagged_entry_without_tags_leaves_it_untagged(cache: Cache) -> None:
    cache.set("a", 1, tags=["t"])
    cache.set("a", 2)
    assert cache.invalidate_tag("t") == 0
    assert cache.get("a") == 2


def test_an_entry_removed_otherwise_leaves_its_tag(cache: Cache, clock: FakeClock) -> None:
    cache.set("a", 1, tags=["t"])
    cache.set("b", 2, ttl=1, tags=["t"])
    cache.invalidate("a")
    clock.advance(2)
    cache.get("b")  # expires it
    cache.set("a", 3)  # set again, untagged
    assert cache.invalidate_tag("t") == 0
    assert cache.get("a") == 3


def test_invalidate_tag_records_the_removal_for_the_helpers(cache: Cache) -> None:
    cache.set("a", 1, tags=["t"])
    cache.invalidate_tag("t")
    removal = unwrapped(cache).last_removal("a")
    assert removal is not None and removal.how == "invalidate_tag" and removal.invalidated


def test_invalidate_tag_reports_how_to_observers(cache: Cache) -> None:
    seen: list[tuple[str, str]] = []

    class Recorder:
        @hookimpl
        def conncache_invalidation(self, key: str, how: str) -> None:
            seen.append((key, how))

    recorder = Recorder()
    observers.register(recorder)
    try:
        cache.set("a", 1, tags=["t"])
        cache.invalidate_tag("t")
    finally:
        observers.unregister(recorder)
    assert seen == [("a", "invalidate_tag")]


@pytest.mark.parametrize(
    ("tags", "error", "match"),
    [
        pytest.param("user:abc", TypeError, "tags must be an iterable of str", id="lone-str"),
        pytest.param([1], TypeError, r"tag must be a str, got 1", id="not-str"),
        pytest.param([""], ValueError, "non-empty", id="empty"),
    ],
)
def test_bad_tags_raise_and_store_nothing(cache: Cache, tags: Any, error: Any, match: str) -> None:
    with pytest.raises(error, match=match):
        cache.set("a", 1, tags=tags)
    assert not cache.has("a")


def test_a_tag_invalidated_while_the_factory_runs_keeps_its_value_out(cache: Cache) -> None:
    inner = unwrapped(cache)
    started, release = threading.Event(), threading.Event()

    def factory() -> str:
        started.set()
        assert release.wait(WAIT_LIMIT)
        return "old"

    worker = Worker(lambda: inner.get_or_set("a", factory, tags=["user:abc"]))
    worker.start()
    assert started.wait(WAIT_LIMIT)
    assert inner.invalidate_tag("user:abc") == 0  # nothing stored yet: it still counts
    release.set()
    assert worker.finish() == "old"
    assert not inner.has("a")


@pytest.mark.slow
def test_memory_stays_flat_under_a_churn_of_a_million_tagged_keys(clock: FakeClock) -> None:
    # Peak resident memory, not tracemalloc (which would make a million sets take
    # minutes): a leak of the tag index would cost this process about 100 MB.
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=1000)

    def churn(start: int, stop: int) -> None:
        for i in range(start, stop):
            cache.set(f"k{i}", i, ttl=1 + i % 7, tags=(f"user:{i % 500}", f"k{i}"))
            clock.advance(0.01)

    churn(0, 50_000)
    gc.collect()
    warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    churn(50_000, 1_000_000)
    gc.collect()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert cache.size() <= 1000
    assert cache.invalidate_tag("user:7") <= 2  # the index knows only live entries
    assert after - warm < 20 * 1024, f"peak memory grew by {after - warm} KiB"
