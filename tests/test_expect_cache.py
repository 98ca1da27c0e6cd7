"""expect_cache: a block's cache events must add up to the counters given."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, expect_cache, observers
from pytest_conncache._expect import SHOWN, CacheEvent
from tests.fakes import FakeClock


def failure(block: Callable[[], object], **expected: Any) -> str:
    """The message of the AssertionError an ``expect_cache(**expected)`` block raises."""
    with pytest.raises(AssertionError) as info, expect_cache(**expected):
        block()
    return str(info.value)


def test_a_block_counting_what_was_expected_passes(cache: ConnectionCache[Any]) -> None:
    with expect_cache(hits=1, misses=1, sets=1, invalidations=1, expirations=0, evictions=0):
        cache.get("user-connections:abc")
        cache.set("user-connections:abc", [1, 2])
        cache.get("user-connections:abc")
        cache.invalidate("user-connections:abc")


def test_only_what_happens_inside_the_block_counts(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.get("k")
    with expect_cache(hits=0, sets=0):
        pass
    cache.get("k")


def test_counters_not_given_are_not_checked(cache: ConnectionCache[Any]) -> None:
    with expect_cache(sets=1):
        cache.get("k")
        cache.set("k", 1)
        cache.get("k")


@pytest.mark.parametrize(
    ("counter", "act"),
    [
        ("hits", lambda cache, clock: (cache.set("k", 1), cache.get("k"))),
        ("misses", lambda cache, clock: cache.get("k")),
        ("sets", lambda cache, clock: cache.set("k", 1)),
        ("invalidations", lambda cache, clock: (cache.set("k", 1), cache.invalidate("k"))),
        (
            "expirations",
            lambda cache, clock: (cache.set("k", 1), clock.advance(10), cache.get("k")),
        ),
    ],
)
def test_a_counter_that_differs_fails_the_block(
    cache: ConnectionCache[Any],
    clock: FakeClock,
    counter: str,
    act: Callable[[ConnectionCache[Any], FakeClock], object],
) -> None:
    message = failure(lambda: act(cache, clock), **{counter: 2})
    assert message.splitlines()[0] == f"expected {counter}=2; the block counted {counter}=1"


def test_an_eviction_count_that_differs_fails_the_block(clock: FakeClock) -> None:
    bounded: ConnectionCache[int] = ConnectionCache(10, clock=clock, max_entries=1)

    def fill() -> None:
        bounded.set("a", 1)
        bounded.set("b", 2)

    message = failure(fill, evictions=0)
    assert message.splitlines()[0] == "expected evictions=0; the block counted evictions=1"


def test_the_first_line_shows_every_counter_given_expected_and_counted(
    cache: ConnectionCache[Any],
) -> None:
    def block() -> None:
        cache.get("k")
        cache.set("k", 1)
        for _ in range(3):
            cache.get("k")

    first = failure(block, hits=2, misses=1).splitlines()[0]
    assert first == "expected hits=2, misses=1; the block counted hits=3, misses=1"


def test_the_failure_lists_the_blocks_events_in_order(cache: ConnectionCache[Any]) -> None:
    cache.set("user-record:abc:2", "old")

    def block() -> None:
        cache.get("user-connections:abc")
        cache.set("user-connections:abc", [1])
        cache.get("user-connections:abc")
        cache.invalidate_prefix("user-record:abc:")

    message = failure(block, hits=0)
    assert message.splitlines()[1:] == [
        "events in the block:",
        "  1. miss 'user-connections:abc'",
        "  2. set 'user-connections:abc'",
        "  3. hit 'user-connections:abc'",
        "  4. invalidation 'user-record:abc:2' how=invalidate_prefix",
    ]


def test_a_failure_with_no_events_says_so(cache: ConnectionCache[Any]) -> None:
    message = failure(lambda: None, sets=1)
    assert message == "expected sets=1; the block counted sets=0\nevents in the block: none"


def test_a_long_listing_shows_the_first_events_and_how_many_more(
    memory_cache: ConnectionCache[Any],
) -> None:
    def block() -> None:
        for i in range(SHOWN + 5):
            memory_cache.get(f"k{i}")

    lines = failure(block, misses=0).splitlines()
    assert lines[2].endswith(". miss 'k0'")
    assert lines[-2].endswith(f"{SHOWN}. miss 'k{SHOWN - 1}'")
    assert lines[-1].startswith("  ... and 5 more")


def test_the_listing_names_the_cache_when_several_caches_appear(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    other: ConnectionCache[Any] = ConnectionCache(10, clock=clock)

    def block() -> None:
        cache.get("a")
        other.get("b")

    lines = failure(block, misses=0).splitlines()
    assert lines[2] == f"  1. cache@{id(cache):x}  miss 'a'"
    assert lines[3] == f"  2. cache@{id(other):x}  miss 'b'"


def test_without_cache_every_cache_counts(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    other: ConnectionCache[Any] = ConnectionCache(10, clock=clock)
    with expect_cache(misses=2):
        cache.get("a")
        other.get("b")


def test_cache_counts_the_events_of_that_cache_only(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    other: ConnectionCache[Any] = ConnectionCache(10, clock=clock)
    with expect_cache(misses=1, sets=0, cache=cache) as block:
        cache.get("a")
        other.set("b", 1)
        other.get("b")
    assert [(event.kind, event.key) for event in block.events] == [("miss", "a")]


def test_a_failure_on_one_cache_says_so_and_lists_its_events_only(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    other: ConnectionCache[Any] = ConnectionCache(10, clock=clock)
    with pytest.raises(AssertionError) as info, expect_cache(misses=0, cache=cache):
        other.get("b")
        cache.get("a")
    lines = str(info.value).splitlines()
    assert lines[0] == (
        f"expected misses=0; the block counted misses=1 "
        f"(on {cache!r} only, not the 1 event of other caches)"
    )
    assert lines[1:] == ["events in the block:", "  1. miss 'a'"]


def test_the_block_exposes_what_it_recorded(cache: ConnectionCache[Any]) -> None:
    with expect_cache(sets=1, invalidations=1) as block:
        cache.set("k", 1)
        cache.invalidate("k")
    assert block.counts == {
        "hits": 0,
        "misses": 0,
        "sets": 1,
        "invalidations": 1,
        "expirations": 0,
        "evictions": 0,
    }
    assert block.events == [
        CacheEvent("set", "k", None, cache),
        CacheEvent("invalidation", "k", "invalidate", cache),
    ]


def test_an_exception_from_the_block_is_not_masked(cache: ConnectionCache[Any]) -> None:
    with pytest.raises(KeyError, match="from the block"), expect_cache(hits=5):
        cache.get("k")
        raise KeyError("from the block")


def test_the_observer_is_registered_for_the_block_only(cache: ConnectionCache[Any]) -> None:
    before = observers.get_plugins()
    with expect_cache(misses=1):
        assert len(observers.get_plugins()) == len(before) + 1
        cache.get("k")
    assert observers.get_plugins() == before


def test_the_observer_is_unregistered_when_the_block_raises(
    cache: ConnectionCache[Any],
) -> None:
    before = observers.get_plugins()
    with pytest.raises(RuntimeError), expect_cache(misses=0):
        raise RuntimeError("boom")
    assert observers.get_plugins() == before


def test_the_observer_is_unregistered_when_the_counts_differ(
    cache: ConnectionCache[Any],
) -> None:
    before = observers.get_plugins()
    failure(lambda: cache.get("k"), misses=0)
    assert observers.get_plugins() == before


def test_nested_blocks_each_count_their_own_events(cache: ConnectionCache[Any]) -> None:
    with expect_cache(misses=2, sets=1) as outer:
        cache.get("a")
        with expect_cache(misses=1, sets=1) as inner:
            cache.get("b")
            cache.set("b", 1)
    assert (outer.counts["misses"], inner.counts["misses"]) == (2, 1)


def test_a_failing_inner_block_reaches_the_outer_block_as_its_exception(
    cache: ConnectionCache[Any],
) -> None:
    outer, inner = expect_cache(misses=99), expect_cache(misses=0)
    with pytest.raises(AssertionError, match="expected misses=0"), outer, inner:
        cache.get("a")


def test_a_block_cannot_run_twice_at_once(cache: ConnectionCache[Any]) -> None:
    block = expect_cache(misses=0)
    with block, pytest.raises(RuntimeError, match="running already"):
        block.__enter__()


def test_events_from_several_threads_add_up(memory_cache: ConnectionCache[Any]) -> None:
    memory_cache.set("k", 1)

    def read() -> None:
        for _ in range(250):
            memory_cache.get("k")

    with expect_cache(hits=1000, cache=memory_cache):
        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


@pytest.mark.asyncio
async def test_an_async_block_counts_aget(cache: ConnectionCache[Any]) -> None:
    await cache.aset("k", 1)
    with expect_cache(hits=1, misses=1, cache=cache):
        assert await cache.aget("k") == 1
        assert await cache.aget("other") is None


@pytest.mark.asyncio
async def test_an_async_block_that_differs_fails(cache: ConnectionCache[Any]) -> None:
    with pytest.raises(AssertionError) as info, expect_cache(hits=1):
        await cache.aget("k")
    assert str(info.value).splitlines() == [
        "expected hits=1; the block counted hits=0",
        "events in the block:",
        "  1. miss 'k'",
    ]


@pytest.mark.parametrize("counter", ["hits", "misses", "sets", "evictions"])
def test_a_negative_counter_is_refused(counter: str) -> None:
    counters: dict[str, Any] = {counter: -1}
    with pytest.raises(ValueError, match=f"{counter} must be >= 0, got -1"):
        expect_cache(**counters)


@pytest.mark.parametrize("value", [1.0, "1", True])
def test_a_counter_that_is_not_an_int_is_refused(value: object) -> None:
    with pytest.raises(TypeError, match=rf"misses must be an int or None, got {value!r}"):
        expect_cache(misses=value)  # type: ignore[arg-type]


def test_at_least_one_counter_is_needed() -> None:
    with pytest.raises(ValueError, match="at least one counter"):
        expect_cache()


def test_cache_must_be_a_connection_cache() -> None:
    with pytest.raises(TypeError, match=r"cache must be a ConnectionCache or None, got \{\}"):
        expect_cache(hits=0, cache={})  # type: ignore[arg-type]


def test_bad_arguments_fail_before_any_observer_is_registered() -> None:
    before = observers.get_plugins()
    with pytest.raises(ValueError):
        expect_cache(hits=-1)
    assert observers.get_plugins() == before
