"""Tests of the example service, written the way pytest-conncache is meant to be used.

Run them with the report: ``pytest examples --conncache-report``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from users_service import (
    CONNECTION_TTL,
    USER_CONNECTIONS_TTL,
    USER_RECORD_TTL,
    DatabaseConnectionsService,
    UserConnections,
    connection_key,
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


@pytest.fixture
def db() -> DatabaseConnectionsService:
    db = DatabaseConnectionsService(latency=0.001)
    db.grant("alice", 1, 2)
    db.grant("bob", 2)
    return db


@pytest.fixture
def service(
    db: DatabaseConnectionsService, connection_cache: ConnectionCache[Any]
) -> UserConnections:
    return UserConnections(db, connection_cache)


def test_second_read_is_served_from_the_cache(
    service: UserConnections, db: DatabaseConnectionsService
) -> None:
    first = service.get_user_connections("alice")
    second = service.get_user_connections("alice")

    assert second == first
    assert db.calls["get_user_connections"] == 1
    assert_cached(user_connections_key("alice"), first)


def test_user_connections_expire_after_five_minutes(
    service: UserConnections, db: DatabaseConnectionsService, frozen_clock: FrozenClock
) -> None:
    service.get_user_connections("alice")

    frozen_clock.advance(USER_CONNECTIONS_TTL - timedelta(seconds=1))
    assert_cached(user_connections_key("alice"))

    frozen_clock.advance(timedelta(seconds=1))
    assert_not_cached(user_connections_key("alice"))
    service.get_user_connections("alice")
    assert db.calls["get_user_connections"] == 2


def test_each_kind_of_key_keeps_its_own_ttl(
    service: UserConnections, connection_cache: ConnectionCache[Any], frozen_clock: FrozenClock
) -> None:
    service.get_user_record("alice", 1)
    service.get_user_connections("alice")
    service.get_connection(1)

    assert connection_cache.ttl_remaining(user_record_key("alice", 1)) == 120
    assert connection_cache.ttl_remaining(user_connections_key("alice")) == 300
    assert connection_cache.ttl_remaining(connection_key(1)) == 600

    frozen_clock.advance(USER_RECORD_TTL)
    assert_not_cached(user_record_key("alice", 1))
    assert_cached(user_connections_key("alice"))

    frozen_clock.advance(CONNECTION_TTL - USER_RECORD_TTL - timedelta(seconds=1))
    assert_cached(connection_key(1))


def test_update_invalidates_the_cached_record(
    service: UserConnections, db: DatabaseConnectionsService
) -> None:
    assert service.get_user_record("alice", 1) == {}

    service.update_user_record("alice", 1, "row-7", {"status": "paid"})

    assert_invalidated(user_record_key("alice", 1))
    assert service.get_user_record("alice", 1) == {"row-7": {"status": "paid"}}
    assert db.calls["get_user_record"] == 2


def test_update_leaves_other_users_records_cached(service: UserConnections) -> None:
    service.get_user_record("alice", 2)
    service.get_user_record("bob", 2)

    service.update_user_record("alice", 2, "row-1", {"n": 1})

    assert_invalidated(user_record_key("alice", 2))
    assert_cached(user_record_key("bob", 2))


def test_sign_out_drops_only_that_users_keys(service: UserConnections) -> None:
    # A token with regex metacharacters: a pattern built from it would also
    # match "user-record:al1ce:..." ("." matches any character).
    service.get_user_record("al.ce", 1)
    service.get_user_record("al.ce", 2)
    service.get_user_record("al1ce", 1)
    service.get_user_connections("al.ce")

    assert service.sign_out("al.ce") == 3

    assert_invalidated(user_record_key("al.ce", 1))
    assert_invalidated(user_record_key("al.ce", 2))
    assert_invalidated(user_connections_key("al.ce"))
    assert_cached(user_record_key("al1ce", 1))


def test_concurrent_readers_share_one_backend_call(
    service: UserConnections, db: DatabaseConnectionsService
) -> None:
    async def many_readers() -> list[Any]:
        return await asyncio.gather(*(service.aget_user_connections("bob") for _ in range(10)))

    results = asyncio.run(many_readers())

    assert all(result == results[0] for result in results)
    assert db.calls["aget_user_connections"] == 1


def test_stats_show_the_cache_at_work(
    service: UserConnections, connection_cache: ConnectionCache[Any]
) -> None:
    for _ in range(3):
        service.get_connection(2)

    stats = connection_cache.stats
    assert (stats.hits, stats.misses, stats.sets) == (2, 1, 1)
    assert stats.hit_ratio == pytest.approx(2 / 3)
