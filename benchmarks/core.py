"""The cache figures: ConnectionCache against cachetools ``TTLCache`` and cacheout ``Cache``.

Every contender gets the same keys (shaped ``user-record:{token}:{id}``), the
same value, a 300 s TTL and ``time.monotonic`` as its clock. Each timing is
one loop calling a bound method directly (``get = cache.get; for k in keys:
get(k)``), so the loop's own cost is the same for everyone; the garbage
collector is off inside the timed loops, as ``timeit`` does. Contenders are
interleaved within each repeat, in a rotating order, and the best repeat
counts.
"""

from __future__ import annotations

import gc
import random
import re
import time
import tracemalloc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

import cacheout
import cachetools

from pytest_conncache import ConnectionCache

TTL = 300.0
OURS = "ConnectionCache"
CACHETOOLS = "cachetools TTLCache"
CACHEOUT = "cacheout Cache"
CONTENDERS = (OURS, CACHETOOLS, CACHEOUT)

# The value every contender stores; created once so memory figures count
# only what the caches themselves allocate.
# Keys per timed loop in the get/set comparisons (see best_per_call).
CHUNK = 500

VALUE: dict[str, object] = {"connections": ["db-1", "db-2"], "role": "admin"}


@dataclass(frozen=True)
class Sizes:
    entries: int = 10_000  # entries in the get/set comparisons
    new_key_batch: int = 200  # new keys per timing of a new-key set
    small: int = 1_000  # new-key set: entries in the small cache
    large: int = 100_000  # new-key set: entries in the large cache
    scan_total: int = 1_000_000  # regex scan vs prefix: entries in the cache
    scan_removed: int = 1_000  # regex scan vs prefix: entries removed
    memory_entries: int = 100_000  # entries for the bytes-per-entry figures
    repeats: int = 15  # rounds for every timing but the scan
    scan_repeats: int = 5  # rounds for the regex scan vs prefix (0.5 s a scan)

    @classmethod
    def full(cls) -> Sizes:
        return cls()

    @classmethod
    def quick(cls) -> Sizes:
        return cls(scan_total=200_000, repeats=5, scan_repeats=3)

    def scaled(self, factor: float) -> Sizes:
        """Every size times ``factor`` (at least 10), for smoke runs; repeats unchanged."""

        def scale(n: int) -> int:
            return max(10, round(n * factor))

        return replace(
            self,
            entries=scale(self.entries),
            new_key_batch=scale(self.new_key_batch),
            small=scale(self.small),
            large=scale(self.large),
            scan_total=scale(self.scan_total),
            scan_removed=scale(self.scan_removed),
            memory_entries=scale(self.memory_entries),
        )


@dataclass(frozen=True)
class Figure:
    """One target: ``ours / reference`` compared against ``bound``."""

    name: str
    label: str
    ours: float
    reference: float
    unit: str
    bound: float
    at_most: bool  # True: ratio <= bound passes; False: ratio >= bound passes

    @property
    def ratio(self) -> float:
        return self.ours / self.reference if self.reference else float("inf")

    @property
    def target(self) -> str:
        return f"{'<=' if self.at_most else '>='} {self.bound:g}"

    @property
    def passed(self) -> bool:
        return self.ratio <= self.bound if self.at_most else self.ratio >= self.bound

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "target": self.target, "passed": self.passed}


def figure_lines(figures: list[dict[str, Any]], width: int = 60, digits: int = 1) -> list[str]:
    """A table of figures (``Figure.as_dict()``): label, ours, reference, ratio, verdict."""
    lines = [f"  {'figure':<{width}}{'ours':>11}{'reference':>12}{'ratio':>8}  target"]
    for f in figures:
        verdict = "PASS" if f["passed"] else "FAIL"
        lines.append(
            f"  {f['label']:<{width}}{f['ours']:>9.{digits}f}{f['unit']:>2}"
            f"{f['reference']:>10.{digits}f}{f['unit']:>2}{f['ratio']:>8.2f}  "
            f"{f['target']} {verdict}"
        )
    return lines


# -- keys and caches ----------------------------------------------------------


class KeyMaker:
    """Keys shaped like the seed's ``user-record:{token}:{connectionId}``, never repeated."""

    def __init__(self, seed: int = 20240601) -> None:
        self._rng = random.Random(seed)
        self._next_id = 0

    def token(self) -> str:
        return f"{self._rng.getrandbits(64):016x}"

    def keys(self, n: int, per_token: int = 10) -> list[str]:
        """``n`` fresh keys, ``per_token`` connections per user token, in random order."""
        keys: list[str] = []
        while len(keys) < n:
            token = self.token()
            for _ in range(min(per_token, n - len(keys))):
                keys.append(f"user-record:{token}:{self._next_id}")
                self._next_id += 1
        self._rng.shuffle(keys)
        return keys


def make_ours(max_entries: int | None = None) -> ConnectionCache[Any]:
    return ConnectionCache(TTL, max_entries=max_entries)


def make_cachetools(maxsize: int) -> cachetools.TTLCache[str, Any]:
    return cachetools.TTLCache(maxsize=maxsize, ttl=TTL, timer=time.monotonic)


def make_cacheout() -> cacheout.Cache:
    # maxsize=0: unbounded, like our default; the monotonic timer for fairness.
    return cacheout.Cache(maxsize=0, ttl=TTL, timer=time.monotonic)


def _setter(cache: Any) -> Callable[[str, Any], None]:
    """The bound 'store this' method: ``set`` where there is one, else ``__setitem__``."""
    setter: Callable[[str, Any], None] = (
        cache.__setitem__ if isinstance(cache, cachetools.Cache) else cache.set
    )
    return setter


def _deleter(cache: Any) -> Callable[[str], Any]:
    if isinstance(cache, ConnectionCache):
        return cache.invalidate
    deleter: Callable[[str], Any] = (
        cache.delete if isinstance(cache, cacheout.Cache) else cache.__delitem__
    )
    return deleter


def _factory() -> object:
    return VALUE


def _fill(cache: Any, keys: Iterable[str]) -> None:
    store = _setter(cache)
    for key in keys:
        store(key, VALUE)


# -- timing -------------------------------------------------------------------


def _time_calls(call: Callable[[str], Any], keys: Sequence[str]) -> int:
    """Nanoseconds for ``call(key)`` over ``keys``, the collector off."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for key in keys:
            call(key)
        return time.perf_counter_ns() - start
    finally:
        if gc_was_on:
            gc.enable()


def _time_stores(store: Callable[[str, Any], Any], keys: Sequence[str], value: Any = VALUE) -> int:
    """Nanoseconds for ``store(key, value)`` over ``keys``, the collector off."""
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for key in keys:
            store(key, value)
        return time.perf_counter_ns() - start
    finally:
        if gc_was_on:
            gc.enable()


def best_of(repeats: int, runs: dict[str, Callable[[], float]]) -> dict[str, float]:
    """The smallest result of each run over ``repeats`` rounds, interleaved, order rotating."""
    names = list(runs)
    best = dict.fromkeys(names, float("inf"))
    for round_ in range(repeats):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            best[name] = min(best[name], runs[name]())
    return best


def best_per_call(
    repeats: int, timers: dict[str, Callable[[Sequence[str]], int]], keys: Sequence[str]
) -> dict[str, float]:
    """ns per call for each timer over ``keys``, taken in chunks of ``CHUNK`` keys.

    Each chunk is timed ``repeats`` times per contender, the contenders
    interleaved chunk by chunk; the best time of every chunk counts. A chunk
    lasts about a millisecond, short enough to often run between two
    preemptions on a busy machine, which a loop over all keys rarely does.
    """
    chunks = [keys[i : i + CHUNK] for i in range(0, len(keys), CHUNK)]
    names = list(timers)
    best = {name: [float("inf")] * len(chunks) for name in names}
    for round_ in range(repeats):
        shift = round_ % len(names)
        order = names[shift:] + names[:shift]
        for i, chunk in enumerate(chunks):
            for name in order:
                best[name][i] = min(best[name][i], timers[name](chunk))
    return {name: sum(times) / len(keys) for name, times in best.items()}


# -- the measurements -----------------------------------------------------------


def measure_operations(sizes: Sizes, keys: KeyMaker) -> dict[str, dict[str, float]]:
    """ns per call of get (hit, miss), set (existing key, new key) for every contender."""
    stored = keys.keys(sizes.entries)
    missing = keys.keys(sizes.entries)
    caches: dict[str, Any] = {
        OURS: make_ours(),
        CACHETOOLS: make_cachetools(maxsize=10 * sizes.entries),
        CACHEOUT: make_cacheout(),
    }
    for cache in caches.values():
        _fill(cache, stored)

    results: dict[str, dict[str, float]] = {}
    results["get, hit"] = best_per_call(
        sizes.repeats,
        {name: partial(_time_calls, cache.get) for name, cache in caches.items()},
        stored,
    )
    results["get, miss"] = best_per_call(
        sizes.repeats,
        {name: partial(_time_calls, cache.get) for name, cache in caches.items()},
        missing,
    )
    # Ours only: cache-aside has no like-for-like call in the other two.
    ours = caches[OURS]
    results["get_or_set, hit"] = best_per_call(
        sizes.repeats,
        {OURS: lambda chunk: _time_stores(ours.get_or_set, chunk, _factory)},
        stored,
    )
    results["set, existing key"] = best_per_call(
        sizes.repeats,
        {name: partial(_time_stores, _setter(cache)) for name, cache in caches.items()},
        stored,
    )

    # New keys go in and come out again (untimed), so every repeat starts at
    # the same size. cacheout's insert is O(n), hence the small batch.
    batch = keys.keys(sizes.new_key_batch)

    def insert_new(cache: Any) -> float:
        elapsed = _time_stores(_setter(cache), batch)
        delete = _deleter(cache)
        for key in batch:
            delete(key)
        if isinstance(cache, ConnectionCache):
            cache.reset_stats()
        return elapsed / len(batch)

    results[f"set, new key ({sizes.entries:,} entries)"] = best_of(
        sizes.repeats, {name: partial(insert_new, cache) for name, cache in caches.items()}
    )
    return results


def measure_new_key_growth(sizes: Sizes, keys: KeyMaker) -> dict[int, float]:
    """Our ns per new-key set in a cache of ``small`` and of ``large`` entries."""
    caches = {}
    for size in (sizes.small, sizes.large):
        cache = make_ours()
        _fill(cache, keys.keys(size))
        caches[size] = cache
    batch = keys.keys(sizes.new_key_batch)

    def insert_new(cache: ConnectionCache[Any]) -> float:
        elapsed = _time_stores(cache.set, batch)
        # Remove them again and forget the removals, so every repeat starts
        # from the same state.
        for key in batch:
            cache.invalidate(key)
        cache.reset_stats()
        return elapsed / len(batch)

    best = best_of(
        # Small batches are noisy; more rounds cost little here.
        3 * sizes.repeats,
        {str(size): partial(insert_new, cache) for size, cache in caches.items()},
    )
    return {int(size): ns for size, ns in best.items()}


def measure_scan_vs_prefix(sizes: Sizes, keys: KeyMaker) -> dict[str, float]:
    """ns for invalidate_pattern vs invalidate_prefix removing the same keys of a big cache."""
    token = keys.token()
    doomed = [f"user-record:{token}:{i}" for i in range(sizes.scan_removed)]
    cache = make_ours()
    _fill(cache, keys.keys(sizes.scan_total - sizes.scan_removed))
    _fill(cache, doomed)
    prefix = f"user-record:{token}:"
    # Unanchored, so the regex must be tried against every key.
    pattern = re.compile(re.escape(prefix))

    def timed(remove: Callable[[], int]) -> float:
        gc.disable()
        try:
            start = time.perf_counter_ns()
            removed = remove()
            elapsed = time.perf_counter_ns() - start
        finally:
            gc.enable()
        if removed != len(doomed):
            raise AssertionError(f"removed {removed} keys, expected {len(doomed)}")
        _fill(cache, doomed)
        cache.reset_stats()
        return elapsed

    return best_of(
        sizes.scan_repeats,
        {
            "invalidate_prefix": lambda: timed(lambda: cache.invalidate_prefix(prefix)),
            "invalidate_pattern": lambda: timed(lambda: cache.invalidate_pattern(pattern)),
        },
    )


def _traced_bytes(build: Callable[[], object]) -> int:
    """Bytes still allocated by ``build()`` while its result is alive."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del built
    return after - before


def measure_memory(sizes: Sizes, keys: KeyMaker) -> dict[str, float]:
    """Bytes per entry with ``memory_entries`` entries; keys and value made beforehand."""
    n = sizes.memory_entries
    stored = keys.keys(n)

    def filled(cache: Any) -> Callable[[], object]:
        def build() -> object:
            built = cache()
            _fill(built, stored)
            return built

        return build

    # cacheout is left out: its O(n) insert makes filling 100k entries take minutes.
    return {
        f"{OURS} (unbounded)": _traced_bytes(filled(make_ours)) / n,
        f"{OURS} (max_entries={n:,})": _traced_bytes(filled(lambda: make_ours(n))) / n,
        CACHETOOLS: _traced_bytes(filled(lambda: make_cachetools(n))) / n,
    }


def run(sizes: Sizes, progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Measure everything; returns the raw numbers and the target figures."""
    keys = KeyMaker()
    progress("get / set against cachetools and cacheout")
    operations = measure_operations(sizes, keys)
    progress("new-key set at two cache sizes")
    growth = measure_new_key_growth(sizes, keys)
    progress(f"regex scan vs prefix over {sizes.scan_total:,} keys")
    scan = measure_scan_vs_prefix(sizes, keys)
    progress("bytes per entry (tracemalloc)")
    memory = measure_memory(sizes, keys)

    n = sizes.memory_entries
    figures = [
        Figure(
            "get_hit_vs_cachetools",
            f"get-hit / {CACHETOOLS} get",
            operations["get, hit"][OURS],
            operations["get, hit"][CACHETOOLS],
            "ns",
            0.5,
            True,
        ),
        Figure(
            "get_hit_vs_cacheout",
            f"get-hit / {CACHEOUT} get",
            operations["get, hit"][OURS],
            operations["get, hit"][CACHEOUT],
            "ns",
            1.0,
            True,
        ),
        Figure(
            "get_miss_vs_cacheout",
            f"get-miss / {CACHEOUT} get-miss",
            operations["get, miss"][OURS],
            operations["get, miss"][CACHEOUT],
            "ns",
            1.0,
            True,
        ),
        Figure(
            "set_existing_vs_cacheout",
            f"set existing key / {CACHEOUT} set",
            operations["set, existing key"][OURS],
            operations["set, existing key"][CACHEOUT],
            "ns",
            1.0,
            True,
        ),
        Figure(
            "new_key_set_growth",
            f"new-key set at {sizes.large:,} / at {sizes.small:,} entries (ours)",
            growth[sizes.large],
            growth[sizes.small],
            "ns",
            2.0,
            True,
        ),
        Figure(
            "regex_scan_vs_prefix",
            f"regex scan / invalidate_prefix, {sizes.scan_removed:,} of "
            f"{sizes.scan_total:,} keys (ours)",
            scan["invalidate_pattern"],
            scan["invalidate_prefix"],
            "ns",
            100.0,
            False,
        ),
        Figure(
            "bytes_per_entry_unbounded",
            f"bytes/entry, unbounded / {CACHETOOLS} ({n:,} entries)",
            memory[f"{OURS} (unbounded)"],
            memory[CACHETOOLS],
            "B",
            1.0,
            True,
        ),
        Figure(
            "bytes_per_entry_bounded",
            f"bytes/entry, max_entries / {CACHETOOLS} ({n:,} entries)",
            memory[f"{OURS} (max_entries={n:,})"],
            memory[CACHETOOLS],
            "B",
            1.0,
            True,
        ),
    ]
    return {
        "sizes": asdict(sizes),
        "operations_ns": operations,
        "new_key_set_ns": {str(size): ns for size, ns in growth.items()},
        "scan_ns": scan,
        "bytes_per_entry": memory,
        "figures": [figure.as_dict() for figure in figures],
    }


# -- output ---------------------------------------------------------------------


def _quantity(value: float, unit: str) -> str:
    if unit == "B":
        return f"{value:,.1f} B"
    if value >= 1e6:
        return f"{value / 1e6:,.2f} ms"
    if value >= 1e4:
        return f"{value / 1e3:,.1f} µs"
    return f"{value:,.1f} ns"


def format_report(result: dict[str, Any]) -> str:
    sizes = result["sizes"]
    lines: list[str] = []
    operations: dict[str, dict[str, float]] = result["operations_ns"]
    header = f"{'ns per call, best of ' + str(sizes['repeats']):<34}" + "".join(
        f"{name:>22}" for name in CONTENDERS
    )
    lines += [header, "-" * len(header)]
    for operation, by_name in operations.items():
        cells = (f"{by_name[name]:,.1f}" if name in by_name else "-" for name in CONTENDERS)
        lines.append(f"{operation:<34}" + "".join(f"{cell:>22}" for cell in cells))
    lines.append("")
    lines.append(
        "ours, ns per new-key set:  "
        + ",  ".join(
            f"{int(size):,} entries {ns:,.1f}" for size, ns in result["new_key_set_ns"].items()
        )
    )
    scan = result["scan_ns"]
    lines.append(
        f"ours, removing {sizes['scan_removed']:,} of {sizes['scan_total']:,} keys:  "
        + ",  ".join(f"{name} {_quantity(ns, 'ns')}" for name, ns in scan.items())
    )
    lines.append(
        "bytes per entry:  "
        + ",  ".join(f"{name} {value:,.1f}" for name, value in result["bytes_per_entry"].items())
    )
    lines.append("")

    rows = [
        (
            f["label"],
            _quantity(f["ours"], f["unit"]),
            _quantity(f["reference"], f["unit"]),
            f"{f['ratio']:.3g}" if f["ratio"] < 1000 else f"{f['ratio']:,.0f}",
            f["target"],
            "PASS" if f["passed"] else "FAIL",
        )
        for f in result["figures"]
    ]
    titles = ("figure", "ours", "reference", "ratio", "target", "result")
    widths = [max(len(row[i]) for row in [titles, *rows]) for i in range(len(titles))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return (
            f"| {first:<{widths[0]}} | "
            + " | ".join(f"{cell:>{w}}" for cell, w in zip(rest, widths[1:], strict=True))
            + " |"
        )

    lines += [line(titles), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += [line(row) for row in rows]
    return "\n".join(lines)
