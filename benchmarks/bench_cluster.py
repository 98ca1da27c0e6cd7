"""ConnectionCache on a Redis Cluster against raw redis-py, on a throwaway cluster.

    python -m benchmarks cluster [--quick]     (also part of python -m benchmarks)

Starts its own cluster (three masters with a replica each, on loopback,
persistence off; ``tests/redis_cluster.py``) and measures, in one run, in
interleaved rounds (ours, then raw, then ours... each round's ratio kept;
the figure is the median ratio, printed with its spread):

- ``get`` hit against a raw ``redis.cluster.RedisCluster`` GET of the same
  bytes (target <= 1.3x);
- ``get_many`` of 100 keys, spread over the three masters, against 100
  single ``get`` (target <= 0.3x);
- ``invalidate_prefix`` removing 1,000 of 100,000 keys against one UNLINK
  per key (target >= 10x faster).

Besides the targets it prints the per-call costs docs/redis.md builds its
"on paper" scaling from: a set, an invalidate with and without waiting for
a replica, a prefix invalidation that removes nothing (the fan-out over the
16 buckets alone), a ``get`` answered by the near cache (``near_cache=True``,
one invalidation channel per master), and a one-server ``get`` /
``invalidate_prefix`` for comparison.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis.cluster

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pytest_conncache import ConnectionCache, RedisBackend  # noqa: E402
from tests.redis_cluster import LocalCluster, redis_cli_binary  # noqa: E402
from tests.redis_server import RedisServer, redis_server_binary  # noqa: E402

VALUE = [{"id": i, "name": f"db-{i}", "host": "10.0.0.1", "port": 5432} for i in range(3)]
KEY = "user-record:tok-123456:conn-42"
BATCH = 100


def interleaved(
    ours: Callable[[], Any], raw: Callable[[], Any], calls: int, rounds: int
) -> tuple[float, float, list[float]]:
    """Microseconds per call (median over rounds) of ours and raw, and each round's ratio.

    Each round times ``calls`` of one, then of the other, starting with a
    different one every round, so that a busy machine favours neither.
    """
    times: dict[str, list[float]] = {"ours": [], "raw": []}
    pair = (("ours", ours), ("raw", raw))
    for r in range(rounds):
        for name, fn in pair if r % 2 == 0 else pair[::-1]:
            started = time.perf_counter()
            for _ in range(calls):
                fn()
            times[name].append((time.perf_counter() - started) / calls * 1e6)
    ratios = [o / r for o, r in zip(times["ours"], times["raw"], strict=True)]
    return statistics.median(times["ours"]), statistics.median(times["raw"]), ratios


def per_call(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    """Microseconds per call, the median of ``rounds`` rounds."""
    readings = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(calls):
            fn()
        readings.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(readings)


def _set_and_invalidate(cache: ConnectionCache[Any]) -> None:
    cache.set(KEY, VALUE)
    cache.invalidate(KEY)


class Result:
    """The figures and the per-call costs of one run."""

    def __init__(self) -> None:
        self.figures: list[dict[str, Any]] = []
        self.costs: dict[str, float] = {}

    def figure(
        self,
        name: str,
        label: str,
        ours: float,
        reference: float,
        unit: str,
        target: str,
        ratios: list[float],
    ) -> None:
        """A figure whose ratio is the median of the rounds' ``ratios``; ``target`` is
        "<= bound" or ">= bound"."""
        ratio = statistics.median(ratios)
        sign, bound = target.split()
        self.figures.append(
            {
                "name": name,
                "label": label,
                "ours": ours,
                "reference": reference,
                "unit": unit,
                "ratio": ratio,
                "spread": [min(ratios), max(ratios)],
                "target": target,
                "passed": ratio <= float(bound) if sign == "<=" else ratio >= float(bound),
            }
        )


def _populate(cache: ConnectionCache[Any], total: int, doomed: int) -> list[str]:
    """``total`` entries, ``doomed`` of them under ``user-record:doomed:``; their keys."""
    keys = [f"user-record:{'doomed' if i < doomed else f't{i % 997}'}:{i}" for i in range(total)]
    for start in range(0, total, 5000):
        cache.set_many(dict.fromkeys(keys[start : start + 5000], [1, 2, 3]))
    cache.invalidate_prefix("no-such-prefix:")  # every bucket's index known complete
    return keys[:doomed]


def _hits(cluster: LocalCluster, result: Result, calls: int, rounds: int) -> None:
    backend = RedisBackend.from_url(cluster.url, namespace="bench")
    raw = redis.cluster.RedisCluster.from_url(cluster.url)
    cache: ConnectionCache[Any] = ConnectionCache(300)
    cache.use_backend(backend)
    try:
        cache.set(KEY, VALUE)
        # Raw redis-py moves the very bytes the cache stores, on the same master.
        name = backend.layout.bucket(KEY).prefix + KEY
        raw_name = backend.layout.bucket(KEY).prefix + "raw:" + KEY
        blob = raw.get(name)
        assert blob is not None
        raw.set(raw_name, blob)
        ours, theirs, ratios = interleaved(
            lambda: cache.get(KEY), lambda: raw.get(raw_name), calls, rounds
        )
        label = "get-hit / raw RedisCluster GET"
        result.figure("cluster_get_hit", label, ours, theirs, "us", "<= 1.3", ratios)

        keys = [f"user-record:t:{i}" for i in range(BATCH)]
        cache.set_many(dict.fromkeys(keys, VALUE))
        masters = {cluster.master_of(backend.layout.bucket(key).prefix) for key in keys}
        assert len(masters) == 3, masters
        get = cache.get
        many, single, ratios = interleaved(
            lambda: cache.get_many(keys),
            lambda: [get(key) for key in keys],
            max(1, calls // 20),
            rounds,
        )
        result.figure(
            "cluster_get_many",
            f"get_many of {BATCH} over 3 masters / {BATCH} get",
            many,
            single,
            "us",
            "<= 0.3",
            ratios,
        )

        result.costs["near hit (near_cache=True, a channel per master)"] = _near_hit(
            cluster, calls, rounds
        )
        result.costs["set"] = per_call(lambda: cache.set(KEY, VALUE), calls, rounds)
        result.costs["invalidate (WAIT 1)"] = (
            per_call(lambda: _set_and_invalidate(cache), calls // 2, rounds) - result.costs["set"]
        )
        quick = RedisBackend(backend.client, namespace="bench", replica_ack_timeout=None)
        unwaited: ConnectionCache[Any] = ConnectionCache(300)
        unwaited.use_backend(quick)
        result.costs["invalidate (no WAIT)"] = (
            per_call(lambda: _set_and_invalidate(unwaited), calls // 2, rounds)
            - result.costs["set"]
        )
        result.costs["invalidate_prefix of nothing (16 buckets)"] = per_call(
            lambda: cache.invalidate_prefix("no-such-prefix:"), calls // 4, rounds
        )
    finally:
        backend.drop_namespace()
        backend.close()
        raw.close()


def _near_hit(cluster: LocalCluster, calls: int, rounds: int) -> float:
    """Microseconds per ``get`` answered by the near copy, on the namespace ``_hits`` filled."""
    backend = RedisBackend.from_url(cluster.url, namespace="bench", near_cache=True)
    near: ConnectionCache[Any] = ConnectionCache(300)
    near.use_backend(backend)
    try:
        deadline = time.monotonic() + 5
        while near.stats.near_hits == 0:  # the first read fills the copy
            assert time.monotonic() < deadline, "the near copy never answered"
            near.get(KEY)
            time.sleep(0.001)
        before = near.stats.near_hits
        cost = per_call(lambda: near.get(KEY), calls * 10, rounds)
        assert near.stats.near_hits == before + calls * 10 * rounds
        return cost
    finally:
        near.use_backend(None)
        backend.close()


def _prefix_drop(
    cluster: LocalCluster,
    result: Result,
    total: int,
    doomed: int,
    rounds: int,
    progress: Callable[[str], None],
) -> None:
    backend = RedisBackend.from_url(cluster.url, namespace="bench-drop")
    raw = redis.cluster.RedisCluster.from_url(cluster.url)
    cache: ConnectionCache[Any] = ConnectionCache(300)
    cache.use_backend(backend)
    ours: list[float] = []
    naive: list[float] = []
    try:
        for r in range(rounds):
            progress(f"cluster: invalidate_prefix of {doomed:,} in {total:,} keys, round {r + 1}")
            backend.drop_namespace()
            _populate(cache, total, doomed)
            started = time.perf_counter()
            removed = cache.invalidate_prefix("user-record:doomed:")
            ours.append((time.perf_counter() - started) * 1e3)
            assert removed == doomed, removed

            names = [
                backend.layout.bucket(key).prefix + key for key in _populate(cache, doomed, doomed)
            ]
            started = time.perf_counter()
            for name in names:
                raw.unlink(name)
            naive.append((time.perf_counter() - started) * 1e3)
    finally:
        backend.drop_namespace()
        backend.close()
        raw.close()
    # For the drop, the ratio is naive over ours (how many times faster).
    result.figure(
        "cluster_prefix_drop_vs_unlink",
        f"one UNLINK per key / invalidate_prefix, {doomed:,} of {total:,} keys",
        statistics.median(ours),
        statistics.median(naive),
        "ms",
        ">= 10",
        [n / o for o, n in zip(ours, naive, strict=True)],
    )
    result.costs[f"invalidate_prefix of {doomed:,} among {total:,}"] = statistics.median(ours) * 1e3


def _one_server(result: Result, calls: int, rounds: int) -> None:
    """The same calls on one server, for the comparison in docs/redis.md."""
    binary = redis_server_binary()
    assert binary is not None
    with RedisServer(binary) as server:
        backend = RedisBackend.from_url(server.url, namespace="bench-one")
        cache: ConnectionCache[Any] = ConnectionCache(300)
        cache.use_backend(backend)
        try:
            cache.set(KEY, VALUE)
            result.costs["one server: get hit"] = per_call(lambda: cache.get(KEY), calls, rounds)
            result.costs["one server: invalidate"] = per_call(
                lambda: _set_and_invalidate(cache), calls // 2, rounds
            ) - per_call(lambda: cache.set(KEY, VALUE), calls, rounds)
            cache.invalidate_prefix("no-such-prefix:")
            result.costs["one server: invalidate_prefix of nothing"] = per_call(
                lambda: cache.invalidate_prefix("no-such-prefix:"), calls // 4, rounds
            )
        finally:
            backend.drop_namespace()
            backend.close()


def run(quick: bool, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Start a cluster, measure, stop it; the figures in the runner's shape."""
    calls, rounds, drop_rounds = (100, 5, 1) if quick else (300, 15, 3)
    total, doomed = (20_000, 200) if quick else (100_000, 1_000)
    server, cli = redis_server_binary(), redis_cli_binary()
    if server is None or cli is None:
        raise RuntimeError(
            "the cluster benchmark needs redis-server and redis-cli (apt-get install redis-server)"
        )
    result = Result()
    progress("cluster: starting 3 masters and 3 replicas")
    with LocalCluster(server, cli) as cluster:
        progress("cluster: get, get_many and invalidations against raw redis-py")
        _hits(cluster, result, calls, rounds)
        _prefix_drop(cluster, result, total, doomed, drop_rounds, progress)
    progress("cluster: the same calls on one server")
    _one_server(result, calls, rounds)
    return {
        "settings": {"calls": calls, "rounds": rounds, "total": total, "doomed": doomed},
        "figures": result.figures,
        "costs_us": {name: round(cost, 1) for name, cost in result.costs.items()},
    }


def format_report(result: dict[str, Any]) -> str:
    lines = [f"  {'figure':<66}{'ours':>10}{'reference':>11}{'ratio':>8}  spread        target"]
    for f in result["figures"]:
        verdict = "PASS" if f["passed"] else "FAIL"
        low, high = f["spread"]
        lines.append(
            f"  {f['label']:<66}{f['ours']:>8.1f}{f['unit']:>2}{f['reference']:>9.1f}{f['unit']:>2}"
            f"{f['ratio']:>8.2f}  [{low:.2f}-{high:.2f}]  {f['target']} {verdict}"
        )
    lines.append(
        "  (ratio: median of interleaved rounds; for the drop, UNLINKs / ours, higher is better)"
    )
    lines.append("  per-call costs (us), for the scaling on paper in docs/redis.md:")
    for name, cost in result["costs_us"].items():
        lines.append(f"    {name:<62}{cost:>10.1f}")
    return "\n".join(lines)


def main() -> int:
    from benchmarks.run import main as run_main

    return run_main(["cluster", *sys.argv[1:]])


if __name__ == "__main__":
    raise SystemExit(main())
