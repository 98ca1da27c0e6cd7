"""invalidate_pattern (JavaScript RegExp.test semantics), invalidate_prefix and clear."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache
from tests.fakes import FakeClock

pytestmark = [pytest.mark.call_styles, pytest.mark.on_cluster]

KEYS = [
    "user-connections:tok1",
    "user-connections:tok2",
    "user-record:tok1:c1",
    "user-record:tok1:c2",
    "user-record:tok2:c1",
    "connection:c1",
    "connection:c2",
]


@pytest.fixture
def filled(cache: ConnectionCache[Any]) -> ConnectionCache[Any]:
    for key in KEYS:
        cache.set(key, key.upper())
    cache.reset_stats()
    return cache


# -- invalidate_pattern ----------------------------------------------------------


def test_pattern_string_removes_matching_keys(filled: ConnectionCache[Any]) -> None:
    filled.invalidate_pattern(r"^user-record:tok1:")
    assert sorted(filled.keys()) == sorted(k for k in KEYS if not k.startswith("user-record:tok1:"))


def test_pattern_returns_how_many_were_removed(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern(r"^user-record:") == 3


def test_compiled_pattern_removes_matching_keys(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern(re.compile(r"^connection:")) == 2
    assert not any(k.startswith("connection:") for k in list(filled.keys()))


def test_compiled_pattern_flags_are_honoured(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern(re.compile(r"^CONNECTION:", re.IGNORECASE)) == 2


def test_unanchored_pattern_matches_anywhere_in_the_key(filled: ConnectionCache[Any]) -> None:
    # RegExp.test is a search: "tok1" matches in the middle of the key.
    assert filled.invalidate_pattern("tok1") == 3
    assert all("tok1" not in k for k in list(filled.keys()))


def test_unanchored_pattern_matches_at_the_end_of_the_key(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern(":c2") == 2


def test_anchored_pattern_matches_only_at_the_start(filled: ConnectionCache[Any]) -> None:
    # "connection" also occurs inside "user-connections:...", which ^ excludes.
    assert filled.invalidate_pattern(r"^connection") == 2
    assert "user-connections:tok1" in filled


def test_unanchored_pattern_also_matches_inside_longer_keys(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern("connection") == 4


def test_end_anchored_pattern(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern(r"c1$") == 3


def test_pattern_matching_nothing_returns_zero(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern("nope") == 0
    assert filled.size() == len(KEYS)


def test_pattern_on_empty_cache_returns_zero(cache: ConnectionCache[Any]) -> None:
    assert cache.invalidate_pattern(".*") == 0


def test_empty_pattern_matches_every_key(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_pattern("") == len(KEYS)
    assert filled.size() == 0


def test_pattern_counts_one_invalidation_per_removed_key(filled: ConnectionCache[Any]) -> None:
    filled.invalidate_pattern(r"^user-record:")
    assert filled.stats == CacheStats(invalidations=3)


def test_pattern_matching_nothing_counts_nothing(filled: ConnectionCache[Any]) -> None:
    filled.invalidate_pattern("nope")
    assert filled.stats == CacheStats()


def test_pattern_removes_expired_entries_as_invalidations(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("a:1", 1, ttl=1)
    cache.set("a:2", 2, ttl=100)
    clock.advance(5)
    assert cache.invalidate_pattern("^a:") == 2
    assert cache.stats.invalidations == 2
    assert cache.stats.expirations == 0


def test_pattern_dot_is_a_regex_wildcard(cache: ConnectionCache[Any]) -> None:
    cache.set("aXb", 1)
    cache.set("a.b", 2)
    assert cache.invalidate_pattern("a.b") == 2


def test_removed_pattern_keys_can_be_set_again(filled: ConnectionCache[Any]) -> None:
    filled.invalidate_pattern("tok1")
    filled.set("user-record:tok1:c1", "again")
    assert filled.get("user-record:tok1:c1") == "again"
    assert filled.invalidate_prefix("user-record:tok1:") == 1


# -- invalidate_prefix ---------------------------------------------------------------


def test_prefix_removes_keys_starting_with_it(filled: ConnectionCache[Any]) -> None:
    filled.invalidate_prefix("user-record:tok1:")
    assert sorted(filled.keys()) == sorted(k for k in KEYS if not k.startswith("user-record:tok1:"))


def test_prefix_returns_how_many_were_removed(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_prefix("user-") == 5


def test_prefix_does_not_match_in_the_middle_of_a_key(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_prefix("tok1") == 0
    assert filled.size() == len(KEYS)


def test_prefix_counts_one_invalidation_per_removed_key(filled: ConnectionCache[Any]) -> None:
    filled.invalidate_prefix("connection:")
    assert filled.stats == CacheStats(invalidations=2)


def test_prefix_matching_nothing_returns_zero_and_counts_nothing(
    filled: ConnectionCache[Any],
) -> None:
    assert filled.invalidate_prefix("zzz") == 0
    assert filled.stats == CacheStats()


def test_prefix_equal_to_a_whole_key_removes_that_key(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_prefix("connection:c1") == 1
    assert filled.keys().count("connection:c1") == 0


def test_prefix_longer_than_every_key_removes_nothing(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_prefix("connection:c1:extra") == 0


def test_empty_prefix_removes_every_key(filled: ConnectionCache[Any]) -> None:
    assert filled.invalidate_prefix("") == len(KEYS)
    assert filled.size() == 0


def test_empty_prefix_on_empty_cache_returns_zero(cache: ConnectionCache[Any]) -> None:
    assert cache.invalidate_prefix("") == 0


@pytest.mark.parametrize("prefix", [".", "a.", "a*", "(", "[x", "a+b", "^a", "a$", "\\d", "a|b"])
def test_regex_metacharacters_in_prefix_are_literal(
    cache: ConnectionCache[Any], prefix: str
) -> None:
    cache.set(prefix + "tail", 1)
    for other in ("aXtail", "abtail", "xtail", "a", "aab", "1tail", "btail"):
        if not other.startswith(prefix):
            cache.set(other, 2)
    assert cache.invalidate_prefix(prefix) == 1
    assert not cache.has(prefix + "tail")
    assert all(not key.startswith(prefix) for key in list(cache.keys()))
    assert cache.size() > 0


def test_prefix_of_max_code_points(cache: ConnectionCache[Any]) -> None:
    top = "\U0010ffff"
    cache.set(top, 1)
    cache.set(top + "a", 2)
    cache.set(top * 3, 3)
    cache.set("\U0010fffe", 4)
    cache.set("z", 5)
    assert cache.invalidate_prefix(top) == 3
    assert sorted(cache.keys()) == ["z", "\U0010fffe"]


def test_prefix_ending_in_max_code_point(cache: ConnectionCache[Any]) -> None:
    top = "\U0010ffff"
    cache.set("a" + top, 1)
    cache.set("a" + top + "x", 2)
    cache.set("a" + top + top, 3)
    cache.set("b", 4)
    cache.set("a", 5)
    cache.set("a\U0010fffe", 6)
    assert cache.invalidate_prefix("a" + top) == 3
    assert sorted(cache.keys()) == ["a", "a\U0010fffe", "b"]


def test_prefix_next_to_neighbouring_code_points(cache: ConnectionCache[Any]) -> None:
    for key in ("ab", "ab\x00", "abc", "ac", "aa\uffff", "ab" + "\U0010ffff"):
        cache.set(key, key)
    assert cache.invalidate_prefix("ab") == 4
    assert sorted(cache.keys()) == ["aa\uffff", "ac"]


def test_prefix_with_non_ascii_characters(cache: ConnectionCache[Any]) -> None:
    cache.set("user-record:José:1", 1)
    cache.set("user-record:José:2", 2)
    cache.set("user-record:Jose:1", 3)
    assert cache.invalidate_prefix("user-record:José:") == 2
    assert cache.keys() == ["user-record:Jose:1"]


def test_prefix_removes_expired_entries_as_invalidations(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("a:1", 1, ttl=1)
    cache.set("a:2", 2, ttl=100)
    clock.advance(5)
    assert cache.invalidate_prefix("a:") == 2
    assert cache.stats.invalidations == 2
    assert cache.stats.expirations == 0


def test_prefix_does_not_return_keys_removed_by_get_expiry(
    cache: ConnectionCache[Any], clock: FakeClock
) -> None:
    cache.set("a:1", 1, ttl=1)
    cache.set("a:2", 2, ttl=100)
    clock.advance(5)
    cache.get("a:1")
    assert cache.invalidate_prefix("a:") == 1


def test_prefix_does_not_return_invalidated_keys(cache: ConnectionCache[Any]) -> None:
    cache.set("a:1", 1)
    cache.set("a:2", 2)
    cache.invalidate("a:1")
    assert cache.invalidate_prefix("a:") == 1


def test_prefix_does_not_count_a_replaced_key_twice(cache: ConnectionCache[Any]) -> None:
    cache.set("a:1", 1)
    cache.set("a:1", 2)
    assert cache.invalidate_prefix("a:") == 1


def test_prefix_on_many_keys_removes_exactly_the_run(cache: ConnectionCache[Any]) -> None:
    # Enough keys that the prefix index spans many internal sublists.
    for i in range(5000):
        cache.set(f"user-record:t{i % 7}:{i}", i)
    expected = sum(1 for i in range(5000) if i % 7 == 3)
    assert cache.invalidate_prefix("user-record:t3:") == expected
    assert cache.size() == 5000 - expected
    assert not any(k.startswith("user-record:t3:") for k in list(cache.keys()))


def test_prefix_after_many_single_invalidations(cache: ConnectionCache[Any]) -> None:
    for i in range(3000):
        cache.set(f"k:{i:05d}", i)
    for i in range(0, 3000, 2):
        cache.invalidate(f"k:{i:05d}")
    assert cache.invalidate_prefix("k:01") == 500
    assert cache.size() == 1000


# -- clear -------------------------------------------------------------------------------


def test_clear_counts_one_invalidation_per_entry(filled: ConnectionCache[Any]) -> None:
    filled.clear()
    assert filled.stats == CacheStats(invalidations=len(KEYS))


def test_clear_then_prefix_removes_nothing(filled: ConnectionCache[Any]) -> None:
    filled.clear()
    assert filled.invalidate_prefix("") == 0
    assert filled.invalidate_pattern("") == 0
