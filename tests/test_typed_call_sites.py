"""Typed call sites on the shared ConnectionCache[Any], with no ``# type: ignore``.

CI runs ``mypy --strict`` over this module: each function returns what the
cache gives back under its own declared type, which ``no-any-return`` would
flag if a method returned ``Any``. The tests run the same functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from pytest_conncache import ConnectionCache


@dataclasses.dataclass(frozen=True)
class Record:
    id: int
    updated: dt.datetime


def connections(cache: ConnectionCache[Any], token: str) -> list[int]:
    return cache.get_or_set(f"user-connections:{token}", lambda: [1, 2])


async def aconnections(cache: ConnectionCache[Any], token: str) -> list[int]:
    async def load() -> list[int]:
        return [1, 2]

    return await cache.aget_or_set(f"user-connections:{token}", load)


def record(cache: ConnectionCache[Any], key: str) -> Record | None:
    return cache.get(key, value_type=Record)


def record_or_default(cache: ConnectionCache[Any], key: str, default: Record) -> Record:
    return cache.get(key, default, value_type=Record)


def records(cache: ConnectionCache[Any], keys: list[str]) -> dict[str, Record]:
    return cache.get_many(keys, value_type=Record)


RECORD = Record(1, dt.datetime(2026, 11, 26, 9, 0))


def test_get_or_set_returns_the_factory_type(cache: ConnectionCache[Any]) -> None:
    assert connections(cache, "abc") == [1, 2]


@pytest.mark.asyncio
async def test_aget_or_set_returns_the_factory_type(cache: ConnectionCache[Any]) -> None:
    assert await aconnections(cache, "abc") == [1, 2]


def test_get_and_get_many_are_typed_by_value_type(cache: ConnectionCache[Any]) -> None:
    cache.set("r", RECORD, value_type=Record)
    assert record(cache, "r") == RECORD
    assert record(cache, "missing") is None
    assert record_or_default(cache, "missing", RECORD) is RECORD
    assert records(cache, ["r", "missing"]) == {"r": RECORD}
