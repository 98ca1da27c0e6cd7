"""The awaitable API and the batch operations, on one throwaway redis-server.

    python -m benchmarks async [--quick]     (also part of python -m benchmarks)

Figures, each measured side by side in this run:

- ``aget`` hit and ``aget_or_set`` hit against a raw ``redis.asyncio`` GET of
  the same bytes (target <= 1.3x);
- ``get_many`` of 100 keys against 100 single ``get``: on Redis sync and
  async (target <= 0.2x, one round trip instead of 100), in memory (<= 1.0x);
- event-loop lag: a 1 ms ticker coroutine runs while other coroutines call
  ``ainvalidate``, ``aget_or_set`` misses (both held by ``CLIENT PAUSE 500
  WRITE``) and ``ainvalidate_pattern`` over 100,000 keys; the worst gap
  between two ticks is the figure (goal <= 20 ms; a blocking call would
  stall the loop for the whole pause).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio

from benchmarks.core import Figure, figure_lines
from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis_server import RedisServer, redis_server_binary

VALUE = [{"id": i, "name": f"db-{i}", "host": "10.0.0.1", "port": 5432} for i in range(3)]
KEY = "user-record:tok-123456:conn-42"
BATCH = 100


async def per_call_async(
    ours: Callable[[], Awaitable[Any]],
    raw: Callable[[], Awaitable[Any]],
    calls: int,
    repeats: int,
) -> tuple[float, float]:
    """Microseconds per await, best of ``repeats`` interleaved runs."""
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("raw", raw)):
            started = time.perf_counter()
            for _ in range(calls):
                await fn()
            times[name].append((time.perf_counter() - started) / calls * 1e6)
    return min(times["ours"]), min(times["raw"])


def per_call(
    ours: Callable[[], Any], raw: Callable[[], Any], calls: int, repeats: int
) -> tuple[float, float]:
    """Microseconds per call, best of ``repeats`` interleaved runs."""
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("raw", raw)):
            started = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - started) / calls * 1e6)
    return min(times["ours"]), min(times["raw"])


async def _async_figures(
    server: RedisServer, calls: int, repeats: int, progress: Callable[[str], None]
) -> list[Figure]:
    cache: ConnectionCache[Any] = ConnectionCache(300)
    backend = RedisBackend.from_url(server.url, namespace="bench-async")
    cache.use_backend(backend)
    raw = redis.asyncio.Redis.from_url(server.url)
    try:
        await cache.aset(KEY, VALUE)
        blob = await raw.get("bench-async:" + KEY)
        assert blob is not None
        await raw.set("raw:" + KEY, blob)

        async def factory() -> Any:
            return VALUE

        progress("async: aget and aget_or_set hits against raw redis.asyncio GET")
        aget, raw_get = await per_call_async(
            lambda: cache.aget(KEY), lambda: raw.get("raw:" + KEY), calls, repeats
        )
        aget_or_set, raw_get2 = await per_call_async(
            lambda: cache.aget_or_set(KEY, factory), lambda: raw.get("raw:" + KEY), calls, repeats
        )
        keys = [f"user-record:t:{i}" for i in range(BATCH)]
        await cache.aset_many(dict.fromkeys(keys, VALUE))

        async def singles() -> None:
            for key in keys:
                await cache.aget(key)

        progress(f"async: aget_many of {BATCH} against {BATCH} aget")
        many, single = await per_call_async(
            lambda: cache.aget_many(keys), singles, max(1, calls // 20), repeats
        )
        return [
            Figure(
                "async_aget_hit", "aget hit / raw redis.asyncio GET", aget, raw_get, "us", 1.3, True
            ),
            Figure(
                "async_aget_or_set_hit",
                "aget_or_set hit / raw redis.asyncio GET",
                aget_or_set,
                raw_get2,
                "us",
                1.3,
                True,
            ),
            Figure(
                "async_aget_many",
                f"aget_many of {BATCH} / {BATCH} aget (Redis)",
                many,
                single,
                "us",
                0.2,
                True,
            ),
        ]
    finally:
        backend.drop_namespace()
        await raw.aclose()


def _sync_batch_figures(server: RedisServer, calls: int, repeats: int) -> list[Figure]:
    keys = [f"user-record:t:{i}" for i in range(BATCH)]
    memory: ConnectionCache[Any] = ConnectionCache(300)
    on_redis: ConnectionCache[Any] = ConnectionCache(300)
    backend = RedisBackend.from_url(server.url, namespace="bench-batch")
    on_redis.use_backend(backend)
    figures = []
    try:
        for label, cache, bound, n in (
            ("Redis", on_redis, 0.2, max(1, calls // 20)),
            ("memory", memory, 1.0, calls * 10),
        ):
            cache.set_many(dict.fromkeys(keys, VALUE))
            get = cache.get
            many, single = per_call(
                lambda c=cache: c.get_many(keys),  # type: ignore[misc]
                lambda g=get: [g(key) for key in keys],  # type: ignore[misc]
                n,
                repeats,
            )
            figures.append(
                Figure(
                    f"get_many_{label.lower()}",
                    f"get_many of {BATCH} / {BATCH} get ({label})",
                    many,
                    single,
                    "us",
                    bound,
                    True,
                )
            )
    finally:
        backend.drop_namespace()
        backend.close()
    return figures


async def _loop_lag(server: RedisServer, keys: int, progress: Callable[[str], None]) -> Figure:
    """The worst tick gap (ms) of a 1 ms ticker while slow calls run beside it."""
    cache: ConnectionCache[Any] = ConnectionCache(300)
    backend = RedisBackend.from_url(server.url, namespace="bench-lag")
    cache.use_backend(backend)
    admin = redis.asyncio.Redis.from_url(server.url)
    try:
        progress(f"async: event-loop lag, {keys:,} keys in the namespace")
        names = [f"session:{i}" for i in range(keys)]
        for start in range(0, keys, 5000):
            await cache.aset_many(dict.fromkeys(names[start : start + 5000], 1))
        await cache.aset("user-record:t:1", 1)
        gaps: list[float] = []
        stop = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not stop.is_set():
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        async def compute() -> int:
            return 1

        ticking = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        await admin.client_pause(500, all=False)  # CLIENT PAUSE 500 WRITE
        await asyncio.gather(
            cache.ainvalidate("user-record:t:1"),
            *(cache.aget_or_set(f"user-connections:{i}", compute) for i in range(20)),
            cache.ainvalidate_pattern(r"^session:\d*7$"),
        )
        stop.set()
        await ticking
        worst = max(gaps) * 1e3
        return Figure(
            "async_loop_lag",
            "worst event-loop tick gap during slow calls (ms)",
            worst,
            20.0,
            "ms",
            1.0,
            True,
        )
    finally:
        backend.drop_namespace()
        await admin.aclose()


def run(quick: bool, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    calls, repeats = (100, 3) if quick else (200, 15)
    keys = 10_000 if quick else 100_000
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("the async benchmark needs redis-server (apt-get install redis-server)")
    with RedisServer(binary) as server:
        figures = asyncio.run(_async_figures(server, calls, repeats, progress))
        progress(f"batch: get_many of {BATCH} against {BATCH} get, Redis and memory")
        figures += _sync_batch_figures(server, calls, repeats)
        lags = [asyncio.run(_loop_lag(server, keys, progress)) for _ in range(1 if quick else 3)]
        figures.append(max(lags, key=lambda f: f.ours))
    return {
        "settings": {"calls": calls, "repeats": repeats, "keys": keys},
        "figures": [f.as_dict() for f in figures],
        "lag_rounds_ms": [round(f.ours, 1) for f in lags],
        "lag_median_ms": round(statistics.median(f.ours for f in lags), 1),
    }


def format_report(result: dict[str, Any]) -> str:
    lines = figure_lines(result["figures"], 52, 1)
    lines.append(
        f"  loop-lag rounds (ms): {result['lag_rounds_ms']} (the worst one is the figure; "
        "reference = the 20 ms goal)"
    )
    return "\n".join(lines)
