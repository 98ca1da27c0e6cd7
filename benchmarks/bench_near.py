"""The near cache, on one throwaway redis-server, with real second processes.

    python -m benchmarks near [--quick]     (also part of python -m benchmarks)

Figures, each measured side by side in this run:

- a near hit against an in-memory hit of the same key and value, in one
  process (target <= 2.0), and against a plain Redis hit (target: at least
  50 times faster); median of interleaved rounds, spread printed;
- invalidation propagation: process A invalidates a key that process B holds
  in its near copy; from ``invalidate`` returning in A until B's copy no
  longer serves it, over 1,000 invalidations: p50 and p99 (goal p99 <= 10
  ms). B polls every 50 µs, as a service between requests does; a process
  that computes without releasing the GIL learns later (by up to Python's
  switch interval, 5 ms), also measured ("busy reader");
- the two-process checker: a writer process stores increasing versions; a
  reader process reads through its near copy and records how stale each
  value it got was (the time since the next version's ``set`` returned);
  the largest staleness must stay within the propagation bound (p99 of the
  busy reader, the worse case); and a second process's ``get_or_set`` that
  began before this process's invalidation never stores its older value
  (0 stale writes out of N races).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import textwrap
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.core import Figure, figure_lines
from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis_server import RedisServer, redis_server_binary

ROOT = Path(__file__).resolve().parent.parent
VALUE = [{"id": i, "name": f"db-{i}", "host": "10.0.0.1", "port": 5432} for i in range(3)]
KEY = "user-record:tok-123456:conn-42"
NAMESPACE = "bench-near"


def _rounds(
    calls: dict[str, Callable[[], Any]], number: int, rounds: int
) -> dict[str, list[float]]:
    """Nanoseconds per call of each, ``rounds`` interleaved rounds (best of 3 inside each)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for round_ in range(rounds):
        names = list(calls)
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            best = min(timeit.repeat(calls[name], number=number, repeat=3))
            times[name].append(best / number * 1e9)
    return times


def _hit_figures(server: RedisServer, quick: bool) -> tuple[list[Figure], dict[str, Any]]:
    near_backend = RedisBackend.from_url(server.url, namespace=NAMESPACE, near_cache=True)
    plain_backend = RedisBackend.from_url(server.url, namespace=NAMESPACE)
    near: ConnectionCache[Any] = ConnectionCache(300)
    plain: ConnectionCache[Any] = ConnectionCache(300)
    memory: ConnectionCache[Any] = ConnectionCache(300)
    near.use_backend(near_backend)
    plain.use_backend(plain_backend)
    try:
        for cache in (near, memory):
            cache.set(KEY, VALUE)
        deadline = time.monotonic() + 5
        while True:  # until the copy answers (the message of its own set came and went)
            before = near.stats.near_hits
            near.get(KEY)
            if near.stats.near_hits > before or time.monotonic() > deadline:
                break
            time.sleep(0.001)
        rounds = 3 if quick else 9
        local = _rounds(
            {"near": lambda: near.get(KEY), "memory": lambda: memory.get(KEY)},
            20_000 if quick else 200_000,
            rounds,
        )
        remote = _rounds(
            {"plain": lambda: plain.get(KEY), "near": lambda: near.get(KEY)},
            200 if quick else 2_000,
            rounds,
        )
        assert near.stats.near_hits > 0
    finally:
        near.use_backend(None)
        plain.use_backend(None)
        near_backend.drop_namespace()
        near_backend.close()
        plain_backend.close()
    vs_memory = [a / b for a, b in zip(local["near"], local["memory"], strict=True)]
    vs_plain = [a / b for a, b in zip(remote["plain"], remote["near"], strict=True)]
    figures = [
        Figure(
            "near_hit_vs_memory_hit",
            "near-cache get hit / in-memory get hit",
            statistics.median(local["near"]),
            statistics.median(local["memory"]),
            "ns",
            2.0,
            True,
        ),
        Figure(
            "plain_redis_hit_vs_near_hit",
            "plain Redis get hit / near-cache get hit",
            statistics.median(remote["plain"]),
            statistics.median(remote["near"]),
            "ns",
            50.0,
            False,
        ),
    ]
    spreads = {
        "near / memory": [min(vs_memory), statistics.median(vs_memory), max(vs_memory)],
        "plain / near": [min(vs_plain), statistics.median(vs_plain), max(vs_plain)],
    }
    return figures, spreads


# -- processes ----------------------------------------------------------------------------


def _process(code: str, *args: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        bufsize=1,
    )


def _stop(*processes: subprocess.Popen[str]) -> None:
    for process in processes:
        if process.poll() is None:
            process.kill()


def _release(cache: ConnectionCache[Any], drop: bool) -> None:
    """Back to memory; close the backend (dropping its namespace first with ``drop``)."""
    backend = cache.backend
    cache.use_backend(None)
    if isinstance(backend, RedisBackend):
        if drop:
            backend.drop_namespace()
        backend.close()


# Process B: holds the key in its near copy, then reports when its copy stops
# serving it, on the system-wide monotonic clock (comparable across processes).
_READER = """
import sys, time
from pytest_conncache import ConnectionCache, RedisBackend

cache = ConnectionCache(300)
cache.use_backend(RedisBackend.from_url(sys.argv[1], namespace=sys.argv[2], near_cache=True))
busy = sys.argv[3] == "busy"
key = "propagation"

def near_hit():
    before = cache.stats.near_hits
    value = cache.get(key)
    return value is not None and cache.stats.near_hits > before

for line in sys.stdin:
    if line.strip() == "quit":
        break
    while not near_hit():  # "warm": the copy serves the key
        time.sleep(0.0005)
    print("warm", flush=True)
    sys.stdin.readline()  # "go": A is about to invalidate
    if busy:
        while cache.get(key) is not None:
            pass
    else:
        while cache.get(key) is not None:
            time.sleep(0.00005)
    print(time.monotonic_ns(), flush=True)
"""


def _propagation(server: RedisServer, rounds: int, busy: bool) -> list[float]:
    """Milliseconds from A's ``invalidate`` returning to B's copy no longer serving."""
    writer: ConnectionCache[Any] = ConnectionCache.from_url(server.url, namespace=NAMESPACE)
    reader = _process(_READER, server.url, NAMESPACE, "busy" if busy else "idle")
    assert reader.stdin is not None and reader.stdout is not None
    delays = []
    try:
        for version in range(rounds):
            writer.set("propagation", version)
            reader.stdin.write("warm\n")
            assert reader.stdout.readline().strip() == "warm"
            reader.stdin.write("go\n")
            time.sleep(0.001)  # B is polling
            writer.invalidate("propagation")
            returned = time.monotonic_ns()
            seen = int(reader.stdout.readline())
            delays.append(max(0, seen - returned) / 1e6)
        reader.stdin.write("quit\n")
        reader.wait(30)
    finally:
        _stop(reader)
        _release(writer, drop=False)
    return delays


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


# The checker's writer: increasing versions, each set's return time printed.
_WRITER = """
import sys, time
from pytest_conncache import ConnectionCache

cache = ConnectionCache.from_url(sys.argv[1], namespace=sys.argv[2])
sys.stdin.readline()
for version in range(int(sys.argv[3])):
    cache.set("checked", version)
    print(version, time.monotonic_ns(), flush=True)
    time.sleep(0.0005)
"""

# The checker's reader: through its near copy, every value with its read time.
_CHECKED_READER = """
import sys, time
from pytest_conncache import ConnectionCache, RedisBackend

cache = ConnectionCache(300)
cache.use_backend(RedisBackend.from_url(sys.argv[1], namespace=sys.argv[2], near_cache=True))
last = int(sys.argv[3]) - 1
print("ready", flush=True)
seen = []
while True:
    value = cache.get("checked")
    now = time.monotonic_ns()
    seen.append((now, -1 if value is None else value))
    if value == last:
        break
    time.sleep(0.00005)
print(cache.stats.near_hits, flush=True)
for now, value in seen:
    print(now, value)
"""


def _checker(server: RedisServer, versions: int) -> tuple[float, int, int]:
    """(largest staleness in ms, reads, near hits) of a reader against a writer."""
    writer = _process(_WRITER, server.url, NAMESPACE, str(versions))
    reader = _process(_CHECKED_READER, server.url, NAMESPACE, str(versions))
    assert writer.stdin is not None and writer.stdout is not None
    assert reader.stdout is not None
    try:
        assert reader.stdout.readline().strip() == "ready"
        writer.stdin.write("go\n")
        writer.stdin.flush()
        written = {}
        for line in writer.stdout:
            version, at = line.split()
            written[int(version)] = int(at)
        near_hits = int(reader.stdout.readline())
        reads = [tuple(map(int, line.split())) for line in reader.stdout]
        writer.wait(30)
        reader.wait(30)
    finally:
        _stop(writer, reader)
    worst = 0
    for now, value in reads:
        newer = written.get(value + 1)  # when the next version's set returned
        if newer is not None and newer < now:
            worst = max(worst, now - newer)
    return worst / 1e6, len(reads), near_hits


# The stale-write race: a get_or_set that began before another process's
# invalidation of a key not stored yet must not store its older value.
_RACER = """
import sys
from pytest_conncache import ConnectionCache, RedisBackend

cache = ConnectionCache(120)
cache.use_backend(RedisBackend.from_url(sys.argv[1], namespace=sys.argv[2], near_cache=True))

for line in sys.stdin:
    key = line.strip()
    if key == "quit":
        break

    def slow_database_read():
        print("reading", flush=True)
        sys.stdin.readline()  # the other process updates and invalidates meanwhile
        return "version 1"

    print(cache.get_or_set(key, slow_database_read), flush=True)
"""


def _stale_writes(server: RedisServer, races: int) -> int:
    cache: ConnectionCache[Any] = ConnectionCache.from_url(server.url, namespace=NAMESPACE)
    racer = _process(_RACER, server.url, NAMESPACE)
    assert racer.stdin is not None and racer.stdout is not None
    stale = 0
    try:
        for race in range(races):
            key = f"user-record:race:{race}"
            racer.stdin.write(key + "\n")
            assert racer.stdout.readline().strip() == "reading"
            cache.invalidate(key)  # the record changed; its entry is not stored yet
            racer.stdin.write("go\n")
            assert racer.stdout.readline().strip() == "version 1"
            stale += cache.get(key) is not None
        racer.stdin.write("quit\n")
        racer.wait(30)
    finally:
        _stop(racer)
        _release(cache, drop=True)
    return stale


def run(quick: bool, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    binary = redis_server_binary()
    if binary is None:
        raise RuntimeError(
            "the near-cache benchmark needs redis-server (apt-get install redis-server)"
        )
    invalidations = 100 if quick else 1_000
    versions = 300 if quick else 3_000
    races = 20 if quick else 200
    with RedisServer(binary) as server:
        progress("near cache: hits against memory and plain Redis")
        figures, spreads = _hit_figures(server, quick)
        progress(f"near cache: propagation over {invalidations} invalidations, idle reader")
        idle = _propagation(server, invalidations, busy=False)
        progress(f"near cache: propagation over {invalidations} invalidations, busy reader")
        busy = _propagation(server, invalidations, busy=True)
        progress(f"near cache: two-process checker, {versions} versions")
        worst, reads, near_hits = _checker(server, versions)
        progress(f"near cache: {races} get_or_set races against an invalidation")
        stale = _stale_writes(server, races)
    bound = _percentile(busy, 0.99)
    figures.append(
        Figure(
            "near_propagation_p99",
            "invalidation propagation p99, idle reader (ms) / 10 ms goal",
            _percentile(idle, 0.99),
            10.0,
            "ms",
            1.0,
            True,
        )
    )
    figures.append(
        Figure(
            "near_staleness_vs_bound",
            "checker: worst staleness / propagation p99 (busy reader)",
            worst,
            bound,
            "ms",
            1.0,
            True,
        )
    )
    figures.append(
        Figure(
            "near_stale_writes",
            "stale writes / get_or_set races against another process",
            stale,
            races,
            "",
            0.0,
            True,
        )
    )
    return {
        "settings": {"invalidations": invalidations, "versions": versions, "races": races},
        "figures": [f.as_dict() for f in figures],
        "hit_ratio_spreads": spreads,
        "propagation_ms": {
            "idle reader": {
                "p50": _percentile(idle, 0.5),
                "p99": _percentile(idle, 0.99),
                "max": max(idle),
            },
            "busy reader": {
                "p50": _percentile(busy, 0.5),
                "p99": _percentile(busy, 0.99),
                "max": max(busy),
            },
        },
        "checker": {
            "reads": reads,
            "near_hits": near_hits,
            "worst_staleness_ms": worst,
            "bound_ms": bound,
        },
        "stale_writes": {"races": races, "stale": stale},
    }


def format_report(result: dict[str, Any]) -> str:
    lines = figure_lines(result["figures"], 60, 2)
    for name, (low, median, high) in result["hit_ratio_spreads"].items():
        lines.append(f"  {name}: median {median:.2f} over the rounds [{low:.2f} - {high:.2f}]")
    for name, p in result["propagation_ms"].items():
        lines.append(
            f"  propagation, {name}: p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms, "
            f"max {p['max']:.2f} ms"
        )
    checker = result["checker"]
    lines.append(
        f"  checker: {checker['reads']:,} reads ({checker['near_hits']:,} near hits), worst "
        f"staleness {checker['worst_staleness_ms']:.2f} ms (bound {checker['bound_ms']:.2f} ms)"
    )
    stale = result["stale_writes"]
    lines.append(
        f"  stale writes: {stale['stale']} of {stale['races']} get_or_set races against an "
        "invalidation in another process"
    )
    return "\n".join(lines)
