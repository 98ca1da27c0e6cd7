"""A cache-backed service, as production code would write it.

``DatabaseConnectionsService`` stands in for a slow remote API: each call
sleeps for ``latency`` seconds and is counted. ``UserConnections`` is the
service under test: cache-aside reads through the shared
``pytest_conncache.connection_cache``, and invalidation after every update.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from typing import Any, TypedDict

from pytest_conncache import ConnectionCache, connection_cache

# The seed's recommended TTLs.
USER_CONNECTIONS_TTL = timedelta(minutes=5)
USER_RECORD_TTL = timedelta(minutes=2)
CONNECTION_TTL = timedelta(minutes=10)


# Every key is built by one of these functions, so that service and tests
# cannot disagree on a key's spelling.
def user_connections_key(user_token: str) -> str:
    return f"user-connections:{user_token}"


def user_record_key(user_token: str, connection_id: int) -> str:
    return f"user-record:{user_token}:{connection_id}"


def user_records_prefix(user_token: str) -> str:
    return f"user-record:{user_token}:"


def connection_key(connection_id: int) -> str:
    return f"connection:{connection_id}"


class Connection(TypedDict):
    """Plain JSON-able data, so the same service runs on the Redis backend."""

    id: int
    name: str
    engine: str


class DatabaseConnectionsService:
    """The slow dependency: an in-process stand-in for a remote API."""

    def __init__(self, latency: float = 0.02) -> None:
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self._connections = {
            1: Connection(id=1, name="orders", engine="postgres"),
            2: Connection(id=2, name="billing", engine="mysql"),
        }
        self._grants: dict[str, list[int]] = {}
        self._records: dict[tuple[str, int], dict[str, Any]] = {}

    def grant(self, user_token: str, *connection_ids: int) -> None:
        self._grants.setdefault(user_token, []).extend(connection_ids)

    def _call(self, name: str) -> None:
        self.calls[name] += 1
        time.sleep(self.latency)

    def get_user_connections(self, user_token: str) -> list[Connection]:
        self._call("get_user_connections")
        return [self._connections[i] for i in self._grants.get(user_token, [])]

    async def aget_user_connections(self, user_token: str) -> list[Connection]:
        self.calls["aget_user_connections"] += 1
        await asyncio.sleep(self.latency)
        return [self._connections[i] for i in self._grants.get(user_token, [])]

    def get_connection(self, connection_id: int) -> Connection:
        self._call("get_connection")
        return self._connections[connection_id]

    def get_user_record(self, user_token: str, connection_id: int) -> dict[str, Any]:
        self._call("get_user_record")
        return dict(self._records.get((user_token, connection_id), {}))

    def update_user_table_record(
        self, user_token: str, connection_id: int, record_id: str, data: dict[str, Any]
    ) -> None:
        self._call("update_user_table_record")
        record = self._records.setdefault((user_token, connection_id), {})
        record[record_id] = data


class UserConnections:
    """The service: reads go through the cache, writes invalidate it."""

    def __init__(
        self, db: DatabaseConnectionsService, cache: ConnectionCache[Any] = connection_cache
    ) -> None:
        self.db = db
        self.cache = cache

    def get_user_connections(self, user_token: str) -> list[Connection]:
        return self.cache.get_or_set(
            user_connections_key(user_token),
            lambda: self.db.get_user_connections(user_token),
            ttl=USER_CONNECTIONS_TTL,
        )

    async def aget_user_connections(self, user_token: str) -> list[Connection]:
        return await self.cache.aget_or_set(
            user_connections_key(user_token),
            lambda: self.db.aget_user_connections(user_token),
            ttl=USER_CONNECTIONS_TTL,
        )

    def get_connection(self, connection_id: int) -> Connection:
        return self.cache.get_or_set(
            connection_key(connection_id),
            lambda: self.db.get_connection(connection_id),
            ttl=CONNECTION_TTL,
        )

    def get_user_record(self, user_token: str, connection_id: int) -> dict[str, Any]:
        return self.cache.get_or_set(
            user_record_key(user_token, connection_id),
            lambda: self.db.get_user_record(user_token, connection_id),
            ttl=USER_RECORD_TTL,
        )

    def update_user_record(
        self, user_token: str, connection_id: int, record_id: str, data: dict[str, Any]
    ) -> None:
        self.db.update_user_table_record(user_token, connection_id, record_id, data)
        self.cache.invalidate(user_record_key(user_token, connection_id))

    def sign_out(self, user_token: str) -> int:
        """Drop everything cached for one user; returns how many entries went.

        Tokens come from outside: the prefix API treats them literally, where
        a regex built from them could match other users' keys.
        """
        removed = self.cache.invalidate_prefix(user_records_prefix(user_token))
        removed += self.cache.invalidate(user_connections_key(user_token))
        return removed
