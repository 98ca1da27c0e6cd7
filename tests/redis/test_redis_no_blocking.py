"""A slow server never holds up another thread, or the event loop, on the cache's lock.

``CLIENT PAUSE <ms> WRITE`` makes the server hold every write for that long
while reads go on: the writes of these tests wait on the server, and the
tests check that nothing else waits with them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer
from tests.threadutil import WAIT_LIMIT, Worker

Cache = ConnectionCache[Any]
PAUSE_MS = 500


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server.url)
    yield client
    client.client_unpause()
    client.close()


def _pause_writes(admin: redis.Redis) -> None:
    admin.client_pause(PAUSE_MS, all=False)  # CLIENT PAUSE <ms> WRITE


def test_a_write_waiting_on_the_server_leaves_the_lock_free(
    cache: Cache, admin: redis.Redis
) -> None:
    cache.set("other", 1)
    _pause_writes(admin)
    writer = Worker(lambda: cache.set("k", "v"))
    writer.start()
    time.sleep(0.05)  # the writer is now waiting on the server
    started = time.monotonic()
    cache.reset_stats()  # takes the cache's lock
    assert cache.get("other") == 1  # a read: the server serves it during the pause
    assert cache.stats.hits == 1
    assert time.monotonic() - started < 0.2
    writer.finish()
    assert cache.get("k") == "v"


@pytest.mark.asyncio
async def test_the_event_loop_keeps_running_while_writes_wait(
    backend: RedisBackend, clock: FakeClock, admin: redis.Redis
) -> None:
    cache: Cache = ConnectionCache(60, clock=clock)
    cache.use_backend(backend)
    await cache.aset("user-record:t:1", "x")
    gaps: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last = time.monotonic()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.monotonic()
            gaps.append(now - last)
            last = now

    async def compute() -> str:
        return "computed"

    ticking = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    _pause_writes(admin)
    results = await asyncio.wait_for(
        asyncio.gather(
            cache.aget_or_set("user-connections:t", compute),  # its store waits
            cache.ainvalidate("user-record:t:1"),  # waits too
            cache.aget("user-record:t:1"),  # a read: answered at once
        ),
        WAIT_LIMIT,
    )
    stop.set()
    await ticking
    assert results[0] == "computed"
    assert results[1] is True
    assert max(gaps) < 0.1, f"the loop stalled {max(gaps) * 1000:.0f} ms"


@pytest.mark.asyncio
async def test_a_coroutine_entering_aget_or_set_is_not_held_up_by_a_slow_store(
    backend: RedisBackend, clock: FakeClock, admin: redis.Redis
) -> None:
    cache: Cache = ConnectionCache(60, clock=clock)
    cache.use_backend(backend)
    await cache.aset("ready", "value")

    async def compute() -> str:
        return "computed"

    _pause_writes(admin)
    leader = asyncio.ensure_future(cache.aget_or_set("slow", compute))
    await asyncio.sleep(0.05)  # the leader's store now waits on the server
    started = time.monotonic()
    assert await cache.aget_or_set("ready", compute) == "value"  # a hit: a read
    assert time.monotonic() - started < 0.2
    assert await leader == "computed"


def test_threads_reading_other_keys_are_not_held_up_by_a_slow_fill(
    cache: Cache, admin: redis.Redis
) -> None:
    cache.set("ready", "value")
    _pause_writes(admin)
    filler = Worker(lambda: cache.get_or_set("slow", lambda: "computed"))
    filler.start()
    time.sleep(0.05)
    started = time.monotonic()
    done = threading.Event()

    def read() -> None:
        assert cache.get_or_set("ready", lambda: "unused") == "value"
        done.set()

    reader = Worker(read)
    reader.start()
    assert done.wait(WAIT_LIMIT)
    assert time.monotonic() - started < 0.2
    assert filler.finish() == "computed"
    reader.finish()
