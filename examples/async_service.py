"""An asyncio service on the shared cache, as an async web handler would use it.

``AsyncUserConnections`` is the service: cache-aside reads with ``@cached``
(over ``aget_or_set``) and ``aget_many``, invalidation after every update
with ``ainvalidate``, sign-out by tag with ``ainvalidate_tag``. Every call awaits;
nothing blocks the event loop, on memory or on Redis.

``serve()`` puts it behind a minimal HTTP/JSON server (asyncio streams, no
framework), and ``python examples/async_service.py --redis URL --workers 2``
runs it as a service would run in production: several worker processes on
one port, sharing one Redis cache, so that an update through one worker is
seen by all of them (add ``?near_cache=1`` to the URL for memory-speed hits,
each worker's copy kept coherent by Redis)::

    GET  /users/{token}/connections
    GET  /users/{token}/records?ids=1,2
    PUT  /users/{token}/records/{id}      (a JSON body: the new record)
    POST /users/{token}/logout
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
from collections import Counter
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from pytest_conncache import ConnectionCache, cached, connection_cache

USER_CONNECTIONS_TTL = timedelta(minutes=5)
USER_RECORD_TTL = timedelta(minutes=2)


USER_CONNECTIONS = "user-connections:{user_token}"
USER_TAG = "user:{user_token}"  # every entry cached for one user carries it


def user_connections_key(user_token: str) -> str:
    return USER_CONNECTIONS.format(user_token=user_token)


def user_record_key(user_token: str, record_id: int) -> str:
    return f"user-record:{user_token}:{record_id}"


class AsyncDatabase:
    """The slow dependency: a stand-in for a remote API, counted.

    ``records`` may be shared between processes (a ``multiprocessing``
    manager's dict), as a real database is shared by a service's workers.
    """

    def __init__(
        self, latency: float = 0.01, records: MutableMapping[tuple[str, int], Any] | None = None
    ) -> None:
        self.latency = latency
        self.calls: Counter[str] = Counter()
        self.connections: dict[str, list[int]] = {}
        self.records: MutableMapping[tuple[str, int], Any] = {} if records is None else records

    async def _call(self, name: str) -> None:
        self.calls[name] += 1
        await asyncio.sleep(self.latency)

    async def user_connections(self, user_token: str) -> list[int]:
        await self._call("user_connections")
        return list(self.connections.get(user_token, []))

    async def user_records(self, user_token: str, ids: list[int]) -> dict[int, dict[str, Any]]:
        await self._call("user_records")
        return {i: dict(self.records.get((user_token, i), {})) for i in ids}

    async def update_user_record(self, user_token: str, record_id: int, data: Any) -> None:
        await self._call("update_user_record")
        self.records[(user_token, record_id)] = dict(data)


class AsyncUserConnections:
    """The service: reads through the cache, writes invalidate it."""

    def __init__(self, db: AsyncDatabase, cache: ConnectionCache[Any] = connection_cache) -> None:
        self.db = db
        self.cache = cache

    @cached(key=USER_CONNECTIONS, ttl=USER_CONNECTIONS_TTL, tags=[USER_TAG])
    async def user_connections(self, user_token: str) -> list[int]:
        return await self.db.user_connections(user_token)

    async def user_records(self, user_token: str, ids: list[int]) -> dict[int, dict[str, Any]]:
        """Many records in one cache round trip; only the missing ones go to the database."""
        keys = {record_id: user_record_key(user_token, record_id) for record_id in ids}
        cached = await self.cache.aget_many(keys.values())
        found = {i: cached[key] for i, key in keys.items() if key in cached}
        missing = [i for i in ids if i not in found]
        if missing:
            loaded = await self.db.user_records(user_token, missing)
            await self.cache.aset_many(
                {keys[i]: record for i, record in loaded.items()},
                ttl=USER_RECORD_TTL,
                tags=[USER_TAG.format(user_token=user_token)],
            )
            found.update(loaded)
        return found

    async def update_user_record(self, user_token: str, record_id: int, data: Any) -> None:
        await self.db.update_user_record(user_token, record_id, data)
        await self.cache.ainvalidate(user_record_key(user_token, record_id))

    async def sign_out(self, user_token: str) -> int:
        """Drop everything cached for one user; how many entries went."""
        return await self.cache.ainvalidate_tag(USER_TAG.format(user_token=user_token))


# -- a minimal HTTP front, for trying the service with several workers ------------------


async def handle(service: AsyncUserConnections, method: str, path: str, body: bytes) -> Any:
    parts = path.split("?")[0].strip("/").split("/")
    query = dict(p.split("=", 1) for p in path.partition("?")[2].split("&") if "=" in p)
    match method, parts:
        case "GET", ["users", token, "connections"]:
            return await service.user_connections(token)
        case "GET", ["users", token, "records"]:
            ids = [int(i) for i in query.get("ids", "").split(",") if i]
            return await service.user_records(token, ids)
        case "PUT", ["users", token, "records", record_id]:
            await service.update_user_record(token, int(record_id), json.loads(body))
            return {"updated": int(record_id), "pid": os.getpid()}
        case "POST", ["users", token, "logout"]:
            return {"removed": await service.sign_out(token)}
    raise LookupError(path)


async def serve(service: AsyncUserConnections, sock: socket.socket) -> None:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")
        method, path, _ = head[0].split(" ")
        length = next(
            (int(h.split(":")[1]) for h in head if h.lower().startswith("content-length")), 0
        )
        body = await reader.readexactly(length)
        try:
            status, payload = "200 OK", await handle(service, method, path, body)
        except LookupError:
            status, payload = "404 Not Found", {"error": path}
        data = json.dumps(payload, default=str).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"X-Worker: {os.getpid()}\r\nContent-Length: {len(data)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + data
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_client, sock=sock)
    async with server:
        await server.serve_forever()


def _worker(sock: socket.socket, redis_url: str | None, records: Any) -> None:
    if redis_url:
        # Only with --redis: the service runs on memory without the redis extra.
        from pytest_conncache import RedisBackend

        # At start-up, once: the singleton, and with it every call site, moves to Redis.
        connection_cache.use_backend(RedisBackend.from_url(redis_url, namespace="async-example"))
    db = AsyncDatabase(records=records)
    db.connections["alice"] = [1, 2]
    asyncio.run(serve(AsyncUserConnections(db), sock))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="share the cache on Redis at URL (redis://host:port/0, ?near_cache=1 for a "
        "near cache in each worker)",
    )
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    sock = socket.create_server(("127.0.0.1", args.port))
    records = multiprocessing.Manager().dict()  # the "database", shared by the workers
    print(f"serving on http://127.0.0.1:{args.port} with {args.workers} worker(s)", flush=True)
    workers = [
        multiprocessing.Process(target=_worker, args=(sock, args.redis, records))
        for _ in range(args.workers)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


if __name__ == "__main__":
    main()
