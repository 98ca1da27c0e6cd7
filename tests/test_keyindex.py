"""SortedKeys, the prefix index behind invalidate_prefix, checked against a sorted list."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_conncache._keyindex import LOAD, SortedKeys, prefix_successor

MAX = "\U0010ffff"


def build(keys: list[str]) -> SortedKeys:
    index = SortedKeys()
    for key in keys:
        index.add(key)
    return index


def naive_prefix(keys: list[str] | set[str], prefix: str) -> list[str]:
    return sorted(k for k in keys if k.startswith(prefix))


def check_pop(keys: list[str], prefix: str) -> None:
    """pop_prefix returns the sorted run and leaves exactly the rest, still sorted."""
    index = build(keys)
    assert index.pop_prefix(prefix) == naive_prefix(keys, prefix)
    rest = sorted(k for k in keys if not k.startswith(prefix))
    assert list(index) == rest
    assert len(index) == len(rest)
    index.add(prefix + "\x00new")  # still a working index afterwards
    assert list(index) == sorted([*rest, prefix + "\x00new"])


def test_empty_index() -> None:
    index = SortedKeys()
    assert len(index) == 0
    assert list(index) == []
    assert index.pop_prefix("") == []
    index.discard("missing")
    assert len(index) == 0


def test_iteration_is_sorted_across_many_sublists() -> None:
    rng = random.Random(1)
    keys = [f"user-record:{rng.randrange(10**9)}:{i}" for i in range(LOAD * 7)]
    index = build(keys)
    assert list(index) == sorted(keys)
    assert len(index) == len(keys)


def test_sorted_insertion_splits_and_stays_sorted() -> None:
    keys = [f"k{i:06d}" for i in range(LOAD * 5)]
    assert list(build(keys)) == keys


def test_reverse_insertion_stays_sorted() -> None:
    keys = [f"k{i:06d}" for i in range(LOAD * 5)]
    assert list(build(list(reversed(keys)))) == keys


@pytest.mark.parametrize("prefix", ["", "a", "a:", "b:1", "c:99", "d", "a:5:", "b:12345:", "b:9"])
def test_pop_prefix_spanning_many_sublists(prefix: str) -> None:
    rng = random.Random(2)
    keys = [f"{rng.choice('abc')}:{rng.randrange(10**6)}:{i}" for i in range(LOAD * 8)]
    check_pop(keys, prefix)


@pytest.mark.parametrize("prefix", ["k01", "k0000", "k03071", "k0", "k1"])
def test_pop_prefix_runs_starting_and_ending_mid_sublist(prefix: str) -> None:
    check_pop([f"k{i:05d}" for i in range(LOAD * 6)], prefix)


def test_pop_prefix_twice_finds_nothing_the_second_time() -> None:
    index = build([f"a:{i:04d}" for i in range(LOAD * 3)] + ["b"])
    assert len(index.pop_prefix("a:")) == LOAD * 3
    assert index.pop_prefix("a:") == []
    assert list(index) == ["b"]


def test_discard_across_sublists_matches_a_sorted_list() -> None:
    rng = random.Random(3)
    keys = [f"key:{i:05d}" for i in range(LOAD * 6)]
    index = build(rng.sample(keys, len(keys)))
    remaining = set(keys)
    for key in rng.sample(keys, len(keys) * 3 // 4):
        index.discard(key)
        remaining.discard(key)
    assert list(index) == sorted(remaining)
    assert len(index) == len(remaining)
    assert index.pop_prefix("key:01") == naive_prefix(remaining, "key:01")


def test_discard_of_a_missing_key_changes_nothing() -> None:
    index = build(["a", "c", "e"])
    for missing in ["", "b", "d", "f", "zz"]:
        index.discard(missing)
    assert list(index) == ["a", "c", "e"]
    assert len(index) == 3


def test_emptied_sublists_then_add_again() -> None:
    keys = [f"k{i:05d}" for i in range(LOAD * 4)]
    index = build(keys)
    for key in keys[: LOAD * 2]:
        index.discard(key)
    index.add("k00000")
    index.add("a")
    assert list(index) == ["a", "k00000", *keys[LOAD * 2 :]]


def test_discard_of_the_largest_key_then_add_past_it() -> None:
    index = build(["a", "b", "c"])
    index.discard("c")
    index.add("d")
    index.add("bb")
    assert list(index) == ["a", "b", "bb", "d"]
    assert index.pop_prefix("b") == ["b", "bb"]
    assert list(index) == ["a", "d"]


def test_retain_keeps_only_the_given_keys() -> None:
    keys = [f"k{i:05d}" for i in range(LOAD * 5)]
    index = build(keys)
    keep = set(keys[::3])
    index.retain(keep)
    assert list(index) == sorted(keep)
    assert len(index) == len(keep)
    assert index.pop_prefix("k001") == naive_prefix(keep, "k001")


def test_index_works_after_retain_drops_everything() -> None:
    index = build(["a", "b"])
    index.retain(set())
    assert len(index) == 0
    index.add("c")
    assert list(index) == ["c"]


def test_clear() -> None:
    index = build([f"k{i}" for i in range(LOAD * 3)])
    index.clear()
    assert len(index) == 0
    assert index.pop_prefix("") == []


@pytest.mark.parametrize(
    ("prefix", "successor"),
    [
        ("ab", "ac"),
        ("a", "b"),
        ("a" + MAX, "b"),
        ("a" + MAX + MAX, "b"),
        (MAX, None),
        (MAX * 3, None),
        ("", None),
        ("\x00", "\x01"),
    ],
)
def test_prefix_successor(prefix: str, successor: str | None) -> None:
    assert prefix_successor(prefix) == successor


@pytest.mark.parametrize("prefix", [MAX, MAX * 2, "a" + MAX, "a", "\U0010fffe", ""])
def test_pop_prefix_of_max_code_points(prefix: str) -> None:
    check_pop([MAX, MAX + "a", MAX * 2, "\U0010fffe", "a" + MAX, "a" + MAX + "b", "b"], prefix)


alphabet = st.sampled_from(["a", "b", ":", "\x00", "\uffff", MAX, "\U0010fffe"])
small_keys = st.text(alphabet, max_size=4)


@settings(max_examples=200, deadline=None)
@given(
    keys=st.lists(small_keys, unique=True, max_size=60),
    removed=st.lists(small_keys, max_size=30),
    prefix=small_keys,
)
def test_pop_prefix_matches_a_filtered_sorted_list(
    keys: list[str], removed: list[str], prefix: str
) -> None:
    index = build(keys)
    for key in removed:
        index.discard(key)
    remaining = [k for k in keys if k not in set(removed)]
    assert list(index) == sorted(remaining)
    assert index.pop_prefix(prefix) == naive_prefix(remaining, prefix)
    assert list(index) == sorted(k for k in remaining if not k.startswith(prefix))


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    prefixes=st.lists(st.text(st.sampled_from("ab:"), max_size=4), min_size=1, max_size=6),
)
def test_repeated_pops_across_many_sublists(seed: int, prefixes: list[str]) -> None:
    rng = random.Random(seed)
    keys = list({"".join(rng.choices("ab:", k=rng.randrange(1, 12))) for _ in range(3000)})
    index = build(keys)
    remaining = set(keys)
    for prefix in prefixes:
        assert index.pop_prefix(prefix) == naive_prefix(remaining, prefix)
        remaining = {k for k in remaining if not k.startswith(prefix)}
        assert list(index) == sorted(remaining)
        assert len(index) == len(remaining)
        index.add(prefix + "b:new")  # insertion after a pop lands in the right place
        remaining.add(prefix + "b:new")
        assert list(index) == sorted(remaining)
