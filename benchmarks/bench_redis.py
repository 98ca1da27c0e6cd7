"""ConnectionCache on Redis against raw redis-py, on one throwaway redis-server.

    python -m benchmarks redis [--quick]     (also part of python -m benchmarks)

Starts its own redis-server on a free 127.0.0.1 port (persistence off) and
prints one table: get-hit and set through the cache against raw redis-py
GET/SET round trips (target <= 1.3x), and invalidate_prefix of 1,000 keys
among 100,000 in the namespace against one UNLINK per key (target >= 10x).
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.core import figure_lines  # noqa: E402
from pytest_conncache import ConnectionCache, RedisBackend  # noqa: E402
from tests.redis_server import RedisServer, redis_server_binary  # noqa: E402

VALUE = [{"id": i, "name": f"db-{i}", "host": "10.0.0.1", "port": 5432} for i in range(3)]
KEY = "user-record:tok-123456:conn-42"


def per_call(
    ours: Callable[[], Any], raw: Callable[[], Any], calls: int, repeats: int
) -> tuple[float, float]:
    """Microseconds per call for ours and raw: the best of ``repeats`` interleaved runs.

    Interleaving keeps a busy machine from favouring whichever runs second;
    the best run is the one least disturbed by other processes.
    """
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("raw", raw)):
            started = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - started) / calls * 1e6)
    return min(times["ours"]), min(times["raw"])


def populate(cache: ConnectionCache[Any], total: int, doomed: int) -> list[bytes]:
    """``total`` entries, ``doomed`` of them under ``user-record:doomed:``; their Redis keys.

    Written with ``set_many`` (one round trip per 5,000 entries), then one
    ``invalidate_prefix`` of nothing, which leaves the namespace's index
    known complete (a new namespace's first prefix removal walks it once).
    """
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    keys = [f"user-record:{'doomed' if i < doomed else f't{i % 997}'}:{i}" for i in range(total)]
    for start in range(0, total, 5000):
        cache.set_many(dict.fromkeys(keys[start : start + 5000], [1, 2, 3]))
    cache.invalidate_prefix("no-such-prefix:")
    return [(backend.prefix + key).encode() for key in keys[:doomed]]


def run(quick: bool, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Time the Redis figures on a throwaway server; returns them in the runner's shape."""
    calls, repeats, rounds = (200, 3, 1) if quick else (200, 25, 3)
    total, doomed = (20_000, 200) if quick else (100_000, 1_000)

    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError("the Redis benchmark needs redis-server (apt-get install redis-server)")
    with RedisServer(binary) as server:
        backend = RedisBackend.from_url(server.url, namespace="bench")
        client = backend.client
        cache: ConnectionCache[Any] = ConnectionCache(300)
        cache.use_backend(backend)
        cache.set(KEY, VALUE)
        # Raw redis-py moves the very bytes the cache stores, with the same PX.
        raw_name = "raw:" + KEY
        raw_blob = client.get("bench:" + KEY)
        assert raw_blob is not None
        client.set(raw_name, raw_blob)

        progress("redis: get and set against raw redis-py")
        our_get, raw_get = per_call(
            lambda: cache.get(KEY), lambda: client.get(raw_name), calls, repeats
        )
        our_set, raw_set = per_call(
            lambda: cache.set(KEY, VALUE),
            lambda: client.set(raw_name, raw_blob, px=300_000),
            calls,
            repeats,
        )

        progress(f"redis: invalidate_prefix of {doomed:,} among {total:,} keys")
        prefix_times, unlink_times = [], []
        for _ in range(rounds):
            backend.drop_namespace()
            populate(cache, total, doomed)
            started = time.perf_counter()
            removed = cache.invalidate_prefix("user-record:doomed:")
            prefix_times.append(time.perf_counter() - started)
            assert removed == doomed, removed

            names = populate(cache, doomed, doomed)
            started = time.perf_counter()
            for name in names:
                client.unlink(name)
            unlink_times.append(time.perf_counter() - started)
        backend.drop_namespace()
        client.close()

    ours = statistics.median(prefix_times) * 1e3
    naive = statistics.median(unlink_times) * 1e3

    def figure(name: str, label: str, mine: float, ref: float, unit: str, limit: float) -> Any:
        # For the drop, the ratio is naive over ours (how many times faster).
        higher_is_better = name == "redis_prefix_drop_vs_unlink"
        ratio = ref / mine if higher_is_better else mine / ref
        passed = ratio >= limit if higher_is_better else ratio <= limit
        target = f"{'>=' if higher_is_better else '<='} {limit:g}"
        return {
            "name": name,
            "label": label,
            "ours": mine,
            "reference": ref,
            "unit": unit,
            "ratio": ratio,
            "target": target,
            "passed": passed,
        }

    return {
        "settings": {"calls": calls, "repeats": repeats, "total": total, "doomed": doomed},
        "figures": [
            figure("redis_get_hit", "get-hit / raw redis-py GET", our_get, raw_get, "us", 1.3),
            figure("redis_set", "set / raw redis-py SET", our_set, raw_set, "us", 1.3),
            figure(
                "redis_prefix_drop_vs_unlink",
                f"one UNLINK per key / invalidate_prefix, {doomed:,} of {total:,} keys",
                ours,
                naive,
                "ms",
                10,
            ),
        ],
    }


def format_report(result: dict[str, Any]) -> str:
    lines = figure_lines(result["figures"], 58, 1)
    lines.append(
        "  reference for the drop: one UNLINK round trip per (already known) key;"
        " ours: invalidate_prefix (index range + UNLINK, one Lua call per batch of 1,000)"
    )
    return "\n".join(lines)


def main() -> int:
    from benchmarks.run import main as run_main

    return run_main(["redis", *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
