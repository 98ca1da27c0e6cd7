"""assert_cached, assert_not_cached and assert_invalidated: passes, failures and messages."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_conncache import (
    ConnectionCache,
    assert_cached,
    assert_invalidated,
    assert_not_cached,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(clock: Clock) -> ConnectionCache[Any]:
    return ConnectionCache(clock=clock)


def failure(check: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(AssertionError) as info:
        check(*args, **kwargs)
    return str(info.value)


def test_assert_cached_passes_for_a_live_key(cache: ConnectionCache[Any]) -> None:
    cache.set("user-connections:abc", [1])

    assert_cached("user-connections:abc", cache=cache)
    assert_cached("user-connections:abc", [1], cache=cache)


def test_assert_cached_passes_for_a_cached_none(cache: ConnectionCache[Any]) -> None:
    cache.set("k", None)

    assert_cached("k", None, cache=cache)


def test_assert_cached_shows_both_values_on_a_mismatch(cache: ConnectionCache[Any]) -> None:
    cache.set("k", {"a": 1})

    message = failure(assert_cached, "k", {"a": 2}, cache=cache)

    assert "key 'k' is cached, but with another value" in message
    assert "cached:   {'a': 1}" in message
    assert "expected: {'a': 2}" in message


def test_assert_cached_says_never_set_and_lists_similar_keys(
    cache: ConnectionCache[Any],
) -> None:
    cache.set("user-connections:abc", 1)
    cache.set("user-connections:abd", 1)
    cache.set("billing-invoice:7", 1)

    message = failure(assert_cached, "user-connection:abc", cache=cache)

    assert "key 'user-connection:abc' is not cached: it was never set" in message
    assert "'user-connections:abc' (cached)" in message
    assert "'user-connections:abd' (cached)" in message
    assert "billing-invoice:7" not in message


def test_assert_cached_lists_at_most_three_similar_keys(cache: ConnectionCache[Any]) -> None:
    for suffix in "abcdef":
        cache.set(f"user-record:tok:{suffix}", 1)

    message = failure(assert_cached, "user-record:tok:x", cache=cache)

    similar = message.split("similar keys:\n")[1]
    assert len(re.findall(r"'user-record:tok:\w' \(cached\)", similar)) == 3


def test_similar_keys_never_list_the_asserted_key_itself(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("user-connections:abc", 1, ttl=120)
    cache.set("user-connections:abd", 1, ttl=1000)
    clock.now = 150.0

    message = failure(assert_cached, "user-connections:abc", cache=cache)

    assert message.startswith("key 'user-connections:abc' is not cached: it expired 30s ago")
    similar = message.split("similar keys:\n")[1]
    assert "'user-connections:abc'" not in similar
    assert "'user-connections:abd' (cached)" in similar


def test_similar_keys_say_what_became_of_each_one(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("user-record:tok:1", 1, ttl=10)
    cache.set("user-record:tok:2", 1, ttl=100)
    cache.set("user-record:tok:3", 1, ttl=100)
    cache.invalidate("user-record:tok:3")
    clock.now = 15.0

    message = failure(assert_cached, "user-record:tok:4", cache=cache)

    similar = message.split("similar keys:\n")[1]
    assert "'user-record:tok:1' (expired 5s ago, still stored)" in similar
    assert "'user-record:tok:2' (cached)" in similar
    assert "'user-record:tok:3' (was invalidated by invalidate() 15s ago)" in similar


def test_assert_cached_says_when_nothing_is_similar(cache: ConnectionCache[Any]) -> None:
    cache.set("connection:1", 1)

    message = failure(assert_cached, "zzzzzzzzzz", cache=cache)

    assert "the cache holds 1 entries; no stored or removed key is similar" in message


def test_assert_cached_says_how_long_ago_a_stored_entry_expired(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("k", 1, ttl=120)
    clock.now = 150

    message = failure(assert_cached, "k", cache=cache)

    assert message.startswith("key 'k' is not cached: it expired 30s ago (ttl 120s)")


def test_assert_cached_remembers_an_expiry_removed_on_read(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("k", 1, ttl=120)
    clock.now = 125.5
    assert cache.get("k") is None

    message = failure(assert_cached, "k", cache=cache)

    assert "it expired 5.5s ago (ttl 120s)" in message


def test_assert_cached_names_the_invalidating_call(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("user-record:abc:1", 1)
    cache.set("user-record:abc:2", 1)
    cache.invalidate_pattern(r"^user-record:abc:")
    clock.now = 2

    message = failure(assert_cached, "user-record:abc:1", cache=cache)

    assert "it was invalidated by invalidate_pattern() 2s ago" in message


def test_assert_cached_says_a_key_was_evicted(clock: Clock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=1)
    cache.set("a", 1)
    cache.set("b", 2)

    message = failure(assert_cached, "a", cache=cache)

    assert "it was evicted just now to respect max_entries=1" in message


def test_assert_not_cached_passes_for_missing_expired_and_invalidated(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("expired", 1, ttl=1)
    cache.set("gone", 1)
    cache.invalidate("gone")
    clock.now = 1

    assert_not_cached("never", cache=cache)
    assert_not_cached("expired", cache=cache)
    assert_not_cached("gone", cache=cache)


def test_assert_not_cached_shows_the_live_entry(cache: ConnectionCache[Any], clock: Clock) -> None:
    cache.set("k", [1, 2], ttl=60)
    clock.now = 15

    message = failure(assert_not_cached, "k", cache=cache)

    assert message == "key 'k' is still cached: value [1, 2], expires in 45s (ttl 60s)"


def test_assert_invalidated_passes_for_each_invalidating_call(
    cache: ConnectionCache[Any],
) -> None:
    for key in ("a", "p:1", "q:1", "c"):
        cache.set(key, 1)
    cache.invalidate("a")
    cache.invalidate_prefix("p:")
    cache.invalidate_pattern("q")
    cache.clear()

    for key in ("a", "p:1", "q:1", "c"):
        assert_invalidated(key, cache=cache)


def test_assert_invalidated_fails_while_still_cached(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1, ttl=float("inf"))

    message = failure(assert_invalidated, "k", cache=cache)

    assert message == (
        "key 'k' was not invalidated: it is still cached: value 1, never expires (ttl inf)"
    )


def test_assert_invalidated_fails_for_an_expired_stored_entry(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("k", 1, ttl=10)
    clock.now = 12

    message = failure(assert_invalidated, "k", cache=cache)

    assert "was not invalidated: it expired 2s ago (ttl 10s)" in message
    assert "no call removed it" in message


def test_assert_invalidated_fails_for_an_expiry_removed_on_read(
    cache: ConnectionCache[Any], clock: Clock
) -> None:
    cache.set("k", 1, ttl=10)
    clock.now = 10
    cache.get("k")

    message = failure(assert_invalidated, "k", cache=cache)

    assert "was not invalidated: it expired just now (ttl 10s)" in message


def test_assert_invalidated_fails_for_a_key_never_set_and_points_at_the_typo(
    cache: ConnectionCache[Any],
) -> None:
    cache.set("user-record:abc:1", 1)
    cache.invalidate("user-record:abc:1")

    message = failure(assert_invalidated, "user-records:abc:1", cache=cache)

    assert "key 'user-records:abc:1' was not invalidated: it was never set" in message
    assert "'user-record:abc:1' (was invalidated by invalidate() just now)" in message


def test_assert_invalidated_forgets_after_reset_stats(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.invalidate("k")
    cache.reset_stats()

    message = failure(assert_invalidated, "k", cache=cache)

    assert "it was never set" in message


def test_a_key_set_again_is_no_longer_invalidated(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1)
    cache.invalidate("k")
    cache.set("k", 2)

    assert "still cached" in failure(assert_invalidated, "k", cache=cache)


def test_helpers_peek_without_counting(cache: ConnectionCache[Any], clock: Clock) -> None:
    cache.set("k", 1, ttl=10)
    before = cache.stats
    assert_cached("k", cache=cache)
    clock.now = 20
    assert_not_cached("k", cache=cache)
    failure(assert_invalidated, "k", cache=cache)

    assert cache.stats == before
    assert cache.has("k"), "the expired entry is still stored: helpers do not remove it"


def test_helpers_peek_without_changing_recency(clock: Clock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock, max_entries=2)
    cache.set("old", 1)
    cache.set("new", 2)
    assert_cached("old", cache=cache)

    cache.set("third", 3)

    assert cache.keys() == ["new", "third"]


def test_helpers_default_to_the_singleton() -> None:
    from pytest_conncache import connection_cache

    connection_cache.set("singleton-key", 1)
    try:
        assert_cached("singleton-key", 1)
    finally:
        connection_cache.invalidate("singleton-key")
    assert_invalidated("singleton-key")


@pytest.mark.parametrize("helper", [assert_cached, assert_not_cached, assert_invalidated])
def test_helpers_reject_a_non_str_key(helper: Any, cache: ConnectionCache[Any]) -> None:
    with pytest.raises(TypeError, match=r"key must be a str, got 42 \(int\)"):
        helper(42, cache=cache)
