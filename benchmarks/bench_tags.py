"""Tags, the decorator and typed values, side by side in one run.

    python -m benchmarks tags [--quick]     (also part of python -m benchmarks)

- memory: ``invalidate_tag`` removing 100 entries among 1,000,000 against
  among 100,000 (target <= 2x: the cost follows what is removed), and
  against ``invalidate_pattern`` of the same entries at 1,000,000 (>= 20x);
- Redis: ``invalidate_tag`` removing 100 of 100,000 entries against
  ``invalidate_pattern`` of the same (>= 20x);
- a ``@cached`` function's hit against a direct ``get_or_set`` hit (<= 1.5x);
- typed decode of a 20-field dataclass from Redis: ``get(value_type=...)``
  against a plain JSON ``get`` and a pickle ``get`` of the same record
  (reported; no target).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from benchmarks.core import Figure, figure_lines
from pytest_conncache import ConnectionCache, PickleSerializer, RedisBackend
from tests.redis_server import RedisServer, redis_server_binary

DOOMED = 100


def _populate(cache: ConnectionCache[Any], total: int) -> None:
    """``total`` entries; ``DOOMED`` of them tagged ``doomed`` and keyed ``doomed:...``."""
    step = 10_000
    for start in range(0, total - DOOMED, step):
        stop = min(start + step, total - DOOMED)
        cache.set_many({f"user-record:t{i % 997}:{i}": i for i in range(start, stop)})
    cache.set_many({f"doomed:{i}": i for i in range(DOOMED)}, tags=["doomed"])


def _timed(call: Callable[[], int], expected: int) -> float:
    started = time.perf_counter()
    removed = call()
    elapsed = time.perf_counter() - started
    assert removed == expected, (removed, expected)
    return elapsed


def _memory_figures(rounds: int, small: int, large: int) -> list[Figure]:
    tag_small: list[float] = []
    tag_large: list[float] = []
    pattern_large: list[float] = []
    for _ in range(rounds):
        for size, into in ((small, tag_small), (large, tag_large)):
            cache: ConnectionCache[Any] = ConnectionCache(300)
            _populate(cache, size)
            into.append(_timed(partial(cache.invalidate_tag, "doomed"), DOOMED))
            if size == large:
                cache.set_many({f"doomed:{i}": i for i in range(DOOMED)}, tags=["doomed"])
                pattern_large.append(_timed(partial(cache.invalidate_pattern, "^doomed:"), DOOMED))
    small_us = statistics.median(tag_small) * 1e6
    large_us = statistics.median(tag_large) * 1e6
    pattern_us = statistics.median(pattern_large) * 1e6
    return [
        Figure(
            "tag_memory_growth",
            f"invalidate_tag of {DOOMED}: at {large:,} / at {small:,} entries",
            large_us,
            small_us,
            "us",
            2.0,
            True,
        ),
        Figure(
            "tag_memory_vs_pattern",
            f"invalidate_pattern / invalidate_tag, {DOOMED} of {large:,}",
            pattern_us,
            large_us,
            "us",
            20.0,
            False,
        ),
    ]


def _redis_figures(server: RedisServer, rounds: int, total: int) -> list[Figure]:
    backend = RedisBackend.from_url(server.url, namespace="bench-tags")
    cache: ConnectionCache[Any] = ConnectionCache(300)
    cache.use_backend(backend)
    tags, patterns = [], []
    try:
        _populate(cache, total)
        cache.invalidate_prefix("nothing:")  # the new namespace's index: known complete
        for _ in range(rounds):
            cache.set_many({f"doomed:{i}": i for i in range(DOOMED)}, tags=["doomed"])
            tags.append(_timed(lambda: cache.invalidate_tag("doomed"), DOOMED))
            cache.set_many({f"doomed:{i}": i for i in range(DOOMED)}, tags=["doomed"])
            patterns.append(_timed(lambda: cache.invalidate_pattern("^doomed:"), DOOMED))
    finally:
        backend.drop_namespace()
        backend.close()
    tag_ms = statistics.median(tags) * 1e3
    pattern_ms = statistics.median(patterns) * 1e3
    return [
        Figure(
            "tag_redis_vs_pattern",
            f"Redis invalidate_pattern / invalidate_tag, {DOOMED} of {total:,}",
            pattern_ms,
            tag_ms,
            "ms",
            20.0,
            False,
        ),
    ]


@dataclasses.dataclass
class Wide:
    """A 20-field record, as a service might cache."""

    f00: int = 0
    f01: str = "name"
    f02: float = 1.5
    f03: bool = True
    f04: list[int] = dataclasses.field(default_factory=lambda: [1, 2, 3])
    f05: dt.datetime = dt.datetime(2026, 11, 26, 9, 30)
    f06: str = "postgres"
    f07: int = 5432
    f08: tuple[str, ...] = ("a", "b")
    f09: dict[str, int] = dataclasses.field(default_factory=lambda: {"x": 1})
    f10: int = 10
    f11: str = "eleven"
    f12: float = 12.5
    f13: int = 13
    f14: str = "fourteen"
    f15: int = 15
    f16: str = "sixteen"
    f17: int = 17
    f18: str = "eighteen"
    f19: dt.date = dt.date(2026, 1, 1)


def _per_call(calls: dict[str, Callable[[], Any]], n: int, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            for _ in range(n):
                call()
            times[name].append((time.perf_counter() - started) / n * 1e6)
    return {name: min(values) for name, values in times.items()}


def _typed_figures(
    server: RedisServer, n: int, repeats: int
) -> tuple[list[Figure], dict[str, float]]:
    typed: ConnectionCache[Any] = ConnectionCache(300)
    plain: ConnectionCache[Any] = ConnectionCache(300)
    pickled: ConnectionCache[Any] = ConnectionCache(300)
    typed.use_backend(RedisBackend.from_url(server.url, namespace="bench-typed"))
    plain.use_backend(RedisBackend.from_url(server.url, namespace="bench-plain"))
    pickled.use_backend(
        RedisBackend.from_url(server.url, namespace="bench-pickle", serializer=PickleSerializer())
    )
    record = Wide()
    typed.set("k", record, value_type=Wide)
    plain.set("k", dataclasses.asdict(record) | {"f05": "2026-11-26T09:30", "f19": "2026-01-01"})
    pickled.set("k", record)
    times = _per_call(
        {
            "typed": lambda: typed.get("k", value_type=Wide),
            "json": lambda: plain.get("k"),
            "pickle": lambda: pickled.get("k"),
        },
        n,
        repeats,
    )
    for cache in (typed, plain, pickled):
        backend = cache.backend
        assert isinstance(backend, RedisBackend)
        backend.drop_namespace()
        backend.close()
    return [], times


def _decorator_figures(n: int, repeats: int) -> tuple[Figure, float]:
    """A decorated function's hit against the same ``get_or_set`` written by hand
    (key and factory built per call, as the decorator does); and, reported, against
    a bare call with a constant key and a prebuilt factory."""
    cache: ConnectionCache[Any] = ConnectionCache(300)

    @cache.cached(key="user-connections:{user_token}")
    def decorated(user_token: str) -> list[int]:
        return [1, 2]

    def by_hand(user_token: str) -> list[int]:
        return cache.get_or_set(f"user-connections:{user_token}", lambda: [1, 2])

    factory: Callable[[], list[int]] = lambda: [1, 2]  # noqa: E731
    key = "user-connections:abc"

    def bare() -> list[int]:
        return cache.get_or_set(key, factory)

    decorated("abc")
    times = _per_call(
        {"decorated": partial(decorated, "abc"), "by_hand": partial(by_hand, "abc"), "bare": bare},
        n,
        repeats,
    )
    figure = Figure(
        "decorated_hit",
        "@cached hit / the same get_or_set by hand (memory)",
        times["decorated"] * 1e3,
        times["by_hand"] * 1e3,
        "ns",
        1.5,
        True,
    )
    return figure, times["decorated"] / times["bare"]


def run(quick: bool, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    rounds, small, large = (3, 10_000, 100_000) if quick else (5, 100_000, 1_000_000)
    redis_total = 10_000 if quick else 100_000
    n, repeats = (2_000, 3) if quick else (20_000, 9)
    progress(f"tags: invalidate_tag in memory at {small:,} and {large:,} entries")
    figures = _memory_figures(rounds, small, large)
    decorated, over_bare = _decorator_figures(n * 5, repeats)
    figures.append(decorated)
    typed: dict[str, float] = {}
    binary = redis_server_binary()
    if binary is not None:
        with RedisServer(binary) as server:
            progress(
                f"tags: invalidate_tag against invalidate_pattern on Redis, {redis_total:,} keys"
            )
            figures += _redis_figures(server, rounds, redis_total)
            progress("typed: decoding a 20-field dataclass from Redis")
            _, typed = _typed_figures(server, max(200, n // 20), repeats)
    return {
        "settings": {"rounds": rounds, "small": small, "large": large, "redis_total": redis_total},
        "figures": [f.as_dict() for f in figures],
        "typed_get_us": {name: round(us, 1) for name, us in typed.items()},
        "decorated_over_bare_get_or_set": round(over_bare, 2),
    }


def format_report(result: dict[str, Any]) -> str:
    lines = figure_lines(result["figures"], 60, 1)
    lines.append(
        "  @cached hit / a bare get_or_set hit (constant key, prebuilt factory): "
        f"{result['decorated_over_bare_get_or_set']}"
    )
    typed = result.get("typed_get_us") or {}
    if typed:
        lines.append(
            "  Redis get of a 20-field dataclass (us per call): "
            + ", ".join(f"{name} {us}" for name, us in typed.items())
            + " (typed: value_type=, decoded into the dataclass; json: a plain dict; pickle)"
        )
    return "\n".join(lines)
