"""A cache-backed service, as production code would write it.

``DatabaseConnectionsService`` stands in for a slow remote API: each call
sleeps for ``latency`` seconds and is counted. ``UserConnections`` is the
service under test: cache-aside reads through the shared
``pytest_conncache.connection_cache`` (``@cached``), invalidation after
every update, and sign-out by tag.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import timedelta
from typing import Any, TypedDict

from pytest_conncache import ConnectionCache, cached, connection_cache

# The seed's recommended TTLs.
USER_CONNECTIONS_TTL = timedelta(minutes=5)
USER_RECORD_TTL = timedelta(minutes=2)
CONNECTION_TTL = timedelta(minutes=10)


# Every key comes from one of these templates (the decorators below use them
# as they are; the functions fill them in), so that service and tests cannot
# disagree on a key's spelling.
USER_CONNECTIONS = "user-connections:{user_token}"
USER_RECORD = "user-record:{user_token}:{connection_id}"
CONNECTION = "connection:{connection_id}"
USER_TAG = "user:{user_token}"  # every entry cached for one user carries it


def user_connections_key(user_token: str) -> str:
    return USER_CONNECTIONS.format(user_token=user_token)


def user_record_key(user_token: str, connection_id: int) -> str:
    return USER_RECORD.format(user_token=user_token, connection_id=connection_id)


def connection_key(connection_id: int) -> str:
    return CONNECTION.format(connection_id=connection_id)


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
    """The service: reads go through the shared cache (``@cached``), writes invalidate it.

    The decorated methods cache on ``pytest_conncache.connection_cache``, the
    shared singleton (the ``connection_cache`` fixture in tests, Redis after
    ``connection_cache.use_backend(...)`` in production); the key templates
    name the methods' parameters.
    """

    def __init__(
        self, db: DatabaseConnectionsService, cache: ConnectionCache[Any] = connection_cache
    ) -> None:
        self.db = db
        self.cache = cache

    @cached(key=USER_CONNECTIONS, ttl=USER_CONNECTIONS_TTL, tags=[USER_TAG])
    def get_user_connections(self, user_token: str) -> list[Connection]:
        return self.db.get_user_connections(user_token)

    @cached(key=USER_CONNECTIONS, ttl=USER_CONNECTIONS_TTL, tags=[USER_TAG])
    async def aget_user_connections(self, user_token: str) -> list[Connection]:
        return await self.db.aget_user_connections(user_token)

    @cached(key=CONNECTION, ttl=CONNECTION_TTL)
    def get_connection(self, connection_id: int) -> Connection:
        return self.db.get_connection(connection_id)

    @cached(key=USER_RECORD, ttl=USER_RECORD_TTL, tags=[USER_TAG])
    def get_user_record(self, user_token: str, connection_id: int) -> dict[str, Any]:
        return self.db.get_user_record(user_token, connection_id)

    def update_user_record(
        self, user_token: str, connection_id: int, record_id: str, data: dict[str, Any]
    ) -> None:
        self.db.update_user_table_record(user_token, connection_id, record_id, data)
        self.get_user_record.invalidate(user_token, connection_id)

    def sign_out(self, user_token: str) -> int:
        """Drop everything cached for one user; returns how many entries went."""
        return self.cache.invalidate_tag(USER_TAG.format(user_token=user_token))
