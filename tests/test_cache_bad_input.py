"""Bad arguments raise a clear TypeError / ValueError / re.error and leave the cache unchanged."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from pytest_conncache import ConnectionCache
from tests.fakes import FakeClock

pytestmark = pytest.mark.call_styles


def _fill(cache: ConnectionCache[Any], clock: FakeClock) -> None:
    cache.set("user-record:a:1", "A1")
    cache.set("user-record:a:2", "A2", ttl=1)
    cache.set("connection:1", "C1")
    cache.get("user-record:a:1")
    cache.get("missing")
    clock.advance(2)  # user-record:a:2 is expired but still stored


@pytest.fixture
def filled(cache: ConnectionCache[Any], clock: FakeClock) -> Iterator[ConnectionCache[Any]]:
    """A cache with live, expired and counted state that must survive every rejected call."""
    _fill(cache, clock)
    before = _state(cache)
    yield cache
    assert _state(cache) == before, "a rejected call changed the cache"


def _state(cache: ConnectionCache[Any]) -> tuple[Any, ...]:
    # Peeks only: reading values with get() would itself change the stats.
    keys = sorted(cache.keys())
    return (keys, [cache.ttl_remaining(k) for k in keys], [k in cache for k in keys], cache.stats)


BAD_KEYS = [
    pytest.param(42, id="int"),
    pytest.param(None, id="None"),
    pytest.param(b"user:1", id="bytes"),
    pytest.param(("user", 1), id="tuple"),
    pytest.param(1.5, id="float"),
]

KEY_CALLS: list[Any] = [
    pytest.param(lambda c, k: c.get(k), id="get"),
    pytest.param(lambda c, k: c.get(k, "default"), id="get-with-default"),
    pytest.param(lambda c, k: c.set(k, 1), id="set"),
    pytest.param(lambda c, k: c.set(k, 1, ttl=5), id="set-with-ttl"),
    pytest.param(lambda c, k: c.invalidate(k), id="invalidate"),
    pytest.param(lambda c, k: c.has(k), id="has"),
    pytest.param(lambda c, k: k in c, id="contains"),
    pytest.param(lambda c, k: c.ttl_remaining(k), id="ttl_remaining"),
    pytest.param(lambda c, k: c.get_or_set(k, lambda: 1), id="get_or_set"),
]


@pytest.mark.parametrize("bad_key", BAD_KEYS)
@pytest.mark.parametrize("call", KEY_CALLS)
def test_non_str_key_raises_type_error_naming_key_and_value(
    filled: ConnectionCache[Any], call: Callable[..., Any], bad_key: object
) -> None:
    with pytest.raises(TypeError, match=r"key must be a str, got " + re.escape(repr(bad_key))):
        call(filled, bad_key)


def test_non_str_key_does_not_call_the_factory(filled: ConnectionCache[Any]) -> None:
    calls: list[int] = []
    with pytest.raises(TypeError):
        filled.get_or_set(42, lambda: calls.append(1))  # type: ignore[arg-type]
    assert calls == []


@pytest.mark.parametrize("bad_key", BAD_KEYS)
def test_non_str_key_in_aget_or_set_raises_type_error(
    filled: ConnectionCache[Any], bad_key: object
) -> None:
    async def factory() -> int:
        return 1

    with pytest.raises(TypeError, match=r"key must be a str"):
        asyncio.run(filled.aget_or_set(bad_key, factory))  # type: ignore[arg-type]


def test_str_subclass_keys_are_accepted(cache: ConnectionCache[Any]) -> None:
    class Key(str):
        pass

    cache.set(Key("k"), 1)
    assert cache.get(Key("k")) == 1
    assert cache.get("k") == 1


@pytest.mark.parametrize("bad_prefix", [42, None, b"user:"])
def test_non_str_prefix_raises_type_error_naming_prefix(
    filled: ConnectionCache[Any], bad_prefix: object
) -> None:
    with pytest.raises(
        TypeError, match=r"prefix must be a str, got " + re.escape(repr(bad_prefix))
    ):
        filled.invalidate_prefix(bad_prefix)  # type: ignore[arg-type]


# -- ttl ------------------------------------------------------------------------------------

BAD_TTL_VALUES = [
    pytest.param(0, "0", id="zero"),
    pytest.param(0.0, "0.0", id="zero-float"),
    pytest.param(-1, "-1", id="negative"),
    pytest.param(-0.001, "-0.001", id="negative-float"),
    pytest.param(math.nan, "nan", id="nan"),
    pytest.param(-math.inf, "-inf", id="minus-inf"),
    pytest.param(timedelta(0), "datetime.timedelta(0)", id="timedelta-zero"),
    pytest.param(timedelta(seconds=-5), "datetime.timedelta(days=-1", id="timedelta-negative"),
    pytest.param(-(10**400), "-1000", id="huge-negative-int"),
]

BAD_TTL_TYPES = [
    pytest.param(True, "True", id="True"),
    pytest.param(False, "False", id="False"),
    pytest.param("10", "'10'", id="str"),
    pytest.param([10], "[10]", id="list"),
    pytest.param(object(), "<object object", id="object"),
]

TTL_CALLS: list[Any] = [
    pytest.param(lambda c, ttl: c.set("new", 1, ttl=ttl), id="set"),
    pytest.param(lambda c, ttl: c.set("connection:1", 1, ttl=ttl), id="set-existing"),
    pytest.param(lambda c, ttl: c.get_or_set("new", lambda: 1, ttl=ttl), id="get_or_set"),
    pytest.param(
        lambda c, ttl: c.get_or_set("connection:1", lambda: 1, ttl=ttl), id="get_or_set-hit"
    ),
]


@pytest.mark.parametrize(("ttl", "shown"), BAD_TTL_VALUES)
@pytest.mark.parametrize("call", TTL_CALLS)
def test_ttl_not_above_zero_raises_value_error_naming_ttl_and_value(
    filled: ConnectionCache[Any], call: Callable[..., Any], ttl: object, shown: str
) -> None:
    with pytest.raises(ValueError, match=r"ttl must be > 0 .*got " + re.escape(shown)):
        call(filled, ttl)


@pytest.mark.parametrize(("ttl", "shown"), BAD_TTL_TYPES)
@pytest.mark.parametrize("call", TTL_CALLS)
def test_ttl_of_wrong_type_raises_type_error_naming_ttl_and_value(
    filled: ConnectionCache[Any], call: Callable[..., Any], ttl: object, shown: str
) -> None:
    with pytest.raises(TypeError, match=r"ttl must be a number .*got " + re.escape(shown)):
        call(filled, ttl)


def test_bad_ttl_does_not_call_the_factory(filled: ConnectionCache[Any]) -> None:
    calls: list[int] = []
    with pytest.raises(ValueError):
        filled.get_or_set("new", lambda: calls.append(1), ttl=0)
    assert calls == []


@pytest.mark.parametrize(("ttl", "shown"), BAD_TTL_VALUES[:3] + BAD_TTL_TYPES[:3])
def test_bad_ttl_in_aget_or_set_raises(
    filled: ConnectionCache[Any], ttl: object, shown: str
) -> None:
    async def factory() -> int:
        return 1

    with pytest.raises((TypeError, ValueError), match=r"ttl .*got " + re.escape(shown)):
        asyncio.run(filled.aget_or_set("new", factory, ttl=ttl))  # type: ignore[arg-type]


def test_ttl_none_means_the_default(cache: ConnectionCache[Any]) -> None:
    cache.set("k", 1, ttl=None)
    assert cache.ttl_remaining("k") == cache.default_ttl


@pytest.mark.parametrize(("ttl", "shown"), BAD_TTL_VALUES)
def test_default_ttl_not_above_zero_raises_value_error(ttl: object, shown: str) -> None:
    with pytest.raises(ValueError, match=r"default_ttl must be > 0 .*got " + re.escape(shown)):
        ConnectionCache(ttl)  # type: ignore[arg-type]


@pytest.mark.parametrize(("ttl", "shown"), [*BAD_TTL_TYPES, pytest.param(None, "None", id="None")])
def test_default_ttl_of_wrong_type_raises_type_error(ttl: object, shown: str) -> None:
    with pytest.raises(TypeError, match=r"default_ttl must be a number .*got " + re.escape(shown)):
        ConnectionCache(ttl)  # type: ignore[arg-type]


# -- max_entries and other constructor arguments ------------------------------------------------


@pytest.mark.parametrize(("value", "shown"), [(0, "0"), (-1, "-1"), (-(10**6), "-1000000")])
def test_max_entries_below_one_raises_value_error(value: int, shown: str) -> None:
    with pytest.raises(ValueError, match=r"max_entries must be >= 1 .*got " + re.escape(shown)):
        ConnectionCache(max_entries=value)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (True, "True"),
        (False, "False"),
        (1.0, "1.0"),
        (1.5, "1.5"),
        (math.inf, "inf"),
        ("10", "'10'"),
    ],
)
def test_max_entries_of_wrong_type_raises_type_error(value: object, shown: str) -> None:
    with pytest.raises(
        TypeError, match=r"max_entries must be a positive int .*got " + re.escape(shown)
    ):
        ConnectionCache(max_entries=value)  # type: ignore[arg-type]


def test_max_entries_none_means_unbounded() -> None:
    assert ConnectionCache(max_entries=None).max_entries is None


@pytest.mark.parametrize("clock", [42, "time.monotonic", 1.0])
def test_non_callable_clock_raises_type_error_naming_clock(clock: object) -> None:
    with pytest.raises(TypeError, match=r"clock must be callable, got " + re.escape(repr(clock))):
        ConnectionCache(clock=clock)  # type: ignore[arg-type]


def test_non_callable_factory_raises_type_error_naming_factory(
    filled: ConnectionCache[Any],
) -> None:
    with pytest.raises(TypeError, match=r"factory must be callable, got 42"):
        filled.get_or_set("new", 42)  # type: ignore[arg-type]


# -- patterns ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["(", "[a-", "user-record:(", "*", "a{2,1}", "(?P<x"])
def test_bad_pattern_string_raises_re_error_naming_the_pattern(
    filled: ConnectionCache[Any], bad: str
) -> None:
    with pytest.raises(re.error, match=re.escape(repr(bad))):
        filled.invalidate_pattern(bad)


def test_bad_pattern_error_keeps_the_pattern_and_position(filled: ConnectionCache[Any]) -> None:
    with pytest.raises(re.error) as info:
        filled.invalidate_pattern("user:(")
    assert info.value.pattern == "user:("
    assert info.value.pos is not None


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(b"user", id="bytes"),
        pytest.param(re.compile(b"user"), id="compiled-bytes"),
        pytest.param(42, id="int"),
        pytest.param(None, id="None"),
    ],
)
def test_non_str_pattern_raises_type_error_naming_pattern(
    filled: ConnectionCache[Any], bad: object
) -> None:
    with pytest.raises(TypeError, match=r"pattern must be a str or a compiled str re.Pattern"):
        filled.invalidate_pattern(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c.invalidate("connection:1"), id="invalidate"),
        pytest.param(lambda c: c.set("connection:1", "C1"), id="set-same-value"),
        pytest.param(lambda c: c.get("nope"), id="get"),
        pytest.param(lambda c: c.purge_expired(), id="purge"),
    ],
)
def test_state_check_sees_any_change(
    cache: ConnectionCache[Any], clock: FakeClock, change: Callable[..., Any]
) -> None:
    # Guards the fixture's own check: a real change must show in the state it compares.
    _fill(cache, clock)
    before = _state(cache)
    change(cache)
    assert _state(cache) != before
