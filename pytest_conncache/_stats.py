"""CacheStats, an immutable snapshot of a cache's counters, and Counters, the live ones.

CacheStats is a NamedTuple, like cachetools' CacheInfo (and unlike a
dataclass, it costs the package no ``inspect`` at import).
"""

from __future__ import annotations

from collections import deque
from itertools import count, islice
from threading import Lock
from typing import NamedTuple

FIELDS = (
    "hits",
    "misses",
    "sets",
    "invalidations",
    "expirations",
    "evictions",
    "errors",
    "near_hits",
)


class CacheStats(NamedTuple):
    """Counters of one cache since it was created or last reset.

    ``errors`` counts store faults served as misses and unreadable entries
    (the Redis backend's fail-open reads); it stays 0 in memory.
    ``near_hits`` counts the lookups a Redis backend's near cache answered
    from this process's copy, without a round trip (they count in ``hits``
    too, or in ``misses`` when the copy's entry had expired).
    """

    hits: int = 0
    misses: int = 0
    sets: int = 0
    invalidations: int = 0
    expirations: int = 0
    evictions: int = 0
    errors: int = 0
    near_hits: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float | None:
        """Hits divided by lookups, or None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    def as_dict(self) -> dict[str, int]:
        return self._asdict()


class Counters:
    """A cache's counters, one ``itertools.count`` per field, for the cache's life.

    ``next()`` on an ``itertools.count`` is one atomic step under the GIL, so
    the hot paths count without a lock. The count objects are never replaced:
    a reset moves a baseline instead, so that the cache's stats (from its last
    ``reset_stats``) and the plugin's per-test counts (from the test's start,
    ``_registry``) each have their own.

    An ``itertools.count`` has no way to read it but ``next()`` (its repr
    would do, at ten times the cost: the plugin reads every cache's counts
    before each test). So a read advances every count by one, and ``reads``
    says how many times that happened: the true count is what ``next()``
    gave minus ``reads``. Reads take ``_read_lock`` so that two of them never
    interleave; the hot paths never take it.
    """

    __slots__ = (*FIELDS, "_all", "_read_lock", "baseline", "reads")

    def __init__(self) -> None:
        self.hits: count[int] = count()
        self.misses: count[int] = count()
        self.sets: count[int] = count()
        self.invalidations: count[int] = count()
        self.expirations: count[int] = count()
        self.evictions: count[int] = count()
        self.errors: count[int] = count()
        self.near_hits: count[int] = count()
        self._all = (
            self.hits,
            self.misses,
            self.sets,
            self.invalidations,
            self.expirations,
            self.evictions,
            self.errors,
            self.near_hits,
        )
        self._read_lock = Lock()
        self.reads = 0
        self.baseline = (0,) * len(FIELDS)

    def values(self) -> tuple[int, ...]:
        """Every count since the cache was made."""
        with self._read_lock:
            counted = list(map(next, self._all))
            reads = self.reads
            self.reads = reads + 1
        return tuple([n - reads for n in counted])

    def since_reset(self) -> tuple[int, ...]:
        return tuple(now - then for now, then in zip(self.values(), self.baseline, strict=True))

    def reset(self) -> None:
        self.baseline = self.values()


def bump(counter: count[int], by: int) -> None:
    """``by`` next() calls, in C."""
    deque(islice(counter, by), 0)
