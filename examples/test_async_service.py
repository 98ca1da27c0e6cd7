"""Tests of the asyncio service, with the same fixtures as the sync one.

They drive the coroutines with ``asyncio.run``, so they need no async test
plugin; with pytest-asyncio installed they could as well be ``async def``.
They pass on memory and, unchanged, with ``--conncache-backend=redis://...``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
from async_service import (
    USER_CONNECTIONS_TTL,
    AsyncDatabase,
    AsyncUserConnections,
    user_connections_key,
    user_record_key,
)

from pytest_conncache import (
    ConnectionCache,
    FrozenClock,
    assert_cached,
    assert_invalidated,
    assert_not_cached,
)

T = TypeVar("T")


def run(awaitable: Awaitable[T]) -> T:
    async def wrapped() -> T:
        return await awaitable

    return asyncio.run(wrapped())


@pytest.fixture
def db() -> AsyncDatabase:
    db = AsyncDatabase(latency=0.001)
    db.connections["alice"] = [1, 2]
    db.records[("alice", 1)] = {"status": "new"}
    db.records[("alice", 2)] = {"status": "paid"}
    return db


@pytest.fixture
def service(db: AsyncDatabase, connection_cache: ConnectionCache[Any]) -> AsyncUserConnections:
    return AsyncUserConnections(db, connection_cache)


def test_concurrent_requests_share_one_database_call(
    service: AsyncUserConnections, db: AsyncDatabase
) -> None:
    async def ten_requests() -> list[list[int]]:
        return await asyncio.gather(*(service.user_connections("alice") for _ in range(10)))

    assert run(ten_requests()) == [[1, 2]] * 10
    assert db.calls["user_connections"] == 1
    assert_cached(user_connections_key("alice"), [1, 2])


def test_records_come_from_the_cache_in_one_batch(
    service: AsyncUserConnections, db: AsyncDatabase, connection_cache: ConnectionCache[Any]
) -> None:
    run(service.user_records("alice", [1]))
    records = run(service.user_records("alice", [1, 2]))

    assert records == {1: {"status": "new"}, 2: {"status": "paid"}}
    assert db.calls["user_records"] == 2  # the second call loaded only record 2
    assert (connection_cache.stats.hits, connection_cache.stats.misses) == (1, 2)


def test_an_update_invalidates_the_cached_record(
    service: AsyncUserConnections, db: AsyncDatabase
) -> None:
    run(service.user_records("alice", [1]))
    run(service.update_user_record("alice", 1, {"status": "paid"}))

    assert_invalidated(user_record_key("alice", 1))
    assert run(service.user_records("alice", [1])) == {1: {"status": "paid"}}


def test_sign_out_drops_every_key_of_the_user(service: AsyncUserConnections) -> None:
    run(service.user_connections("alice"))
    run(service.user_records("alice", [1, 2]))

    assert run(service.sign_out("alice")) == 3

    assert_invalidated(user_connections_key("alice"))
    assert_invalidated(user_record_key("alice", 2))


def test_connections_expire_after_five_minutes(
    service: AsyncUserConnections, db: AsyncDatabase, frozen_clock: FrozenClock
) -> None:
    run(service.user_connections("alice"))
    frozen_clock.advance(USER_CONNECTIONS_TTL - timedelta(seconds=1))
    assert_cached(user_connections_key("alice"))

    frozen_clock.advance(timedelta(seconds=1))
    assert_not_cached(user_connections_key("alice"))
    run(service.user_connections("alice"))
    assert db.calls["user_connections"] == 2
