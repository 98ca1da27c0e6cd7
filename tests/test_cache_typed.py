"""Typed values: with value_type=, what comes back has the type that went in, on every store."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from pydantic import BaseModel

from pytest_conncache import CacheStats, ConnectionCache

pytestmark = pytest.mark.call_styles

Cache = ConnectionCache[Any]


@dataclasses.dataclass(frozen=True)
class Record:
    id: int
    updated: dt.datetime
    tags: tuple[str, ...]


class Profile(BaseModel):
    name: str
    born: dt.date
    connections: list[int]


RECORD = Record(7, dt.datetime(2026, 11, 26, 9, 30, tzinfo=dt.timezone.utc), ("a", "b"))
PROFILE = Profile(name="alice", born=dt.date(1990, 5, 17), connections=[1, 2])

VALUES = [
    pytest.param(Record, RECORD, id="dataclass"),
    pytest.param(Profile, PROFILE, id="pydantic-model"),
    pytest.param(dt.datetime, dt.datetime(2026, 1, 2, 3, 4, 5), id="datetime"),
    pytest.param(tuple[int, str], (1, "x"), id="tuple"),
    pytest.param(dict[int, list[Record]], {1: [RECORD]}, id="typed-container"),
]


@pytest.mark.parametrize(("value_type", "value"), VALUES)
def test_get_returns_the_type_that_went_in(cache: Cache, value_type: Any, value: Any) -> None:
    cache.set("k", value, value_type=value_type)
    got = cache.get("k", value_type=value_type)
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize(("value_type", "value"), VALUES)
def test_get_or_set_stores_and_returns_the_type(cache: Cache, value_type: Any, value: Any) -> None:
    assert cache.get_or_set("k", lambda: value, value_type=value_type) == value
    again = cache.get_or_set("k", lambda: None, value_type=value_type)
    assert again == value and type(again) is type(value)


def test_get_many_decodes_each_value(cache: Cache) -> None:
    cache.set_many({"a": RECORD, "b": RECORD}, value_type=Record)
    assert cache.get_many(["a", "b", "c"], value_type=Record) == {"a": RECORD, "b": RECORD}


def test_a_cache_wide_value_type_applies_to_every_call(make_cache: Any) -> None:
    typed: Cache = make_cache(10, value_type=Record)
    typed.set("k", RECORD)
    assert typed.get("k") == RECORD
    assert typed.get_or_set("j", lambda: RECORD) == RECORD
    assert typed.get("j") == RECORD


def test_a_value_not_of_the_value_type_fails_at_set_where_values_are_encoded(
    make_cache: Any,
) -> None:
    typed: Cache = make_cache(10, value_type=Record)
    if typed.shared:  # bytes on a server: the value must encode as its type
        with pytest.raises(TypeError, match=r"value for key 'k' cannot be stored .*dict"):
            typed.set("k", {"id": 1})
        assert not typed.has("k")
        assert typed.stats == CacheStats()
    else:  # memory keeps the object itself (--conncache-strict would flag it)
        typed.set("k", {"id": 1})
        assert typed.get("k") == {"id": 1}


def test_a_bad_value_type_names_it(cache: Cache) -> None:
    with pytest.raises(TypeError, match=r"value_type must be a type Pydantic can validate"):
        cache.set("k", 1, value_type=object())
    assert not cache.has("k")
