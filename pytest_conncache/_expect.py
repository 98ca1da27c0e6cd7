"""expect_cache: the cache's answer to Django's ``assertNumQueries``.

::

    with expect_cache(hits=1, misses=1, sets=1):
        service.user_connections("abc")  # a miss and a set
        service.user_connections("abc")  # a hit

The block's events are counted by an observer (see ``_hooks``) registered
for the block only; on leaving a block that did not raise, every counter
given must equal what the block counted, or ``AssertionError`` lists the
block's events in order. It imports nothing from pytest: production code
may import the package, and a failure reads the same anywhere.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any, NamedTuple

from ._cache import ConnectionCache
from ._hooks import hookimpl, observers
from ._validate import shown

__all__ = ["CacheEvent", "CacheExpectation", "expect_cache"]

#: The counters, in the order messages list them, and the event kind each counts.
COUNTERS = ("hits", "misses", "sets", "invalidations", "expirations", "evictions")
KINDS = ("hit", "miss", "set", "invalidation", "expiration", "eviction")
_COUNTER_OF = dict(zip(KINDS, COUNTERS, strict=True))

#: How many events a block keeps in ``events`` (the counts stay exact past it).
KEPT = 10_000
#: How many of them a failure lists.
SHOWN = 100


class CacheEvent(NamedTuple):
    """One event of a block: ``kind`` ("hit", "miss", "set", "invalidation",
    "expiration", "eviction"), the key, ``how`` for an invalidation (the method
    that removed it, e.g. "invalidate_prefix", else None), and the cache."""

    kind: str
    key: str
    how: str | None
    cache: ConnectionCache[Any]


class CacheExpectation:
    """What ``expect_cache`` returns: a context manager, and afterwards the record.

    ``counts``: every counter (``hits`` ... ``evictions``) as the block counted
    it; ``events``: its events in order (the first ``KEPT``; ``dropped`` says
    how many more there were); ``expected``: the counters given. While the
    block runs both grow as events arrive, so a test may look in the middle.
    """

    def __init__(self, expected: dict[str, int], cache: ConnectionCache[Any] | None) -> None:
        self.expected = expected
        self.cache = cache
        self.counts: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.events: list[CacheEvent] = []
        self.dropped = 0
        self.elsewhere = 0
        self._lock = threading.Lock()
        self._recorder: _Recorder | None = None

    def __repr__(self) -> str:
        expected = ", ".join(f"{name}={value}" for name, value in self.expected.items())
        return f"<expect_cache({expected}) counted {_listed(self.counts, self.expected)}>"

    # -- the block -----------------------------------------------------------------------

    def __enter__(self) -> CacheExpectation:
        if self._recorder is not None:
            raise RuntimeError(
                "this expect_cache block is running already: call expect_cache again"
            )
        self.counts = dict.fromkeys(COUNTERS, 0)
        self.events = []
        self.dropped = 0
        self.elsewhere = 0
        self._recorder = _Recorder(self)
        observers.register(self._recorder)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        __tracebackhide__ = True
        recorder, self._recorder = self._recorder, None
        if recorder is not None and observers.is_registered(recorder):
            observers.unregister(recorder)
        if exc_type is None:
            self.check()

    def check(self) -> None:
        """Raise ``AssertionError`` unless every expected counter matches (``__exit__``
        calls it for a block that did not raise)."""
        __tracebackhide__ = True
        with self._lock:
            counts, events = dict(self.counts), list(self.events)
            dropped, elsewhere = self.dropped, self.elsewhere
        if all(counts[name] == value for name, value in self.expected.items()):
            return
        raise AssertionError(self._failure(counts, events, dropped, elsewhere))

    # -- recording (from the observer, under the reporting cache's lock) ------------------

    def _add(self, cache: ConnectionCache[Any], kind: str, key: str, how: str | None) -> None:
        if self.cache is not None and cache is not self.cache:
            with self._lock:
                self.elsewhere += 1
            return
        with self._lock:
            self.counts[_COUNTER_OF[kind]] += 1
            if len(self.events) < KEPT:
                self.events.append(CacheEvent(kind, key, how, cache))
            else:
                self.dropped += 1

    # -- the failure -----------------------------------------------------------------------

    def _failure(
        self, counts: dict[str, int], events: list[CacheEvent], dropped: int, elsewhere: int
    ) -> str:
        first = (
            f"expected {_listed(self.expected, self.expected)}; "
            f"the block counted {_listed(counts, self.expected)}"
        )
        if self.cache is not None:
            plural = "s" if elsewhere != 1 else ""
            others = f", not the {elsewhere} event{plural} of other caches" if elsewhere else ""
            first += f" (on {self.cache!r} only{others})"
        lines = [first]
        if not events:
            lines.append("events in the block: none")
            return "\n".join(lines)
        lines.append("events in the block:")
        names = _cache_names(events)
        width = len(str(min(len(events), SHOWN)))
        for number, event in enumerate(events[:SHOWN], 1):
            where = f"{names[id(event.cache)]}  " if len(names) > 1 else ""
            how = f" how={event.how}" if event.how is not None else ""
            lines.append(f"  {number:>{width}}. {where}{event.kind} {shown(event.key)}{how}")
        more = len(events) - SHOWN + dropped
        if more > 0:
            lines.append(f"  ... and {more} more (all of the first {KEPT} are in .events)")
        return "\n".join(lines)


class _Recorder:
    """The block's observer: hands each event to its ``CacheExpectation``."""

    def __init__(self, expectation: CacheExpectation) -> None:
        self.expectation = expectation

    @hookimpl
    def conncache_hit(self, cache: ConnectionCache[Any], key: str) -> None:
        self.expectation._add(cache, "hit", key, None)

    @hookimpl
    def conncache_miss(self, cache: ConnectionCache[Any], key: str) -> None:
        self.expectation._add(cache, "miss", key, None)

    @hookimpl
    def conncache_set(self, cache: ConnectionCache[Any], key: str) -> None:
        self.expectation._add(cache, "set", key, None)

    @hookimpl
    def conncache_invalidation(self, cache: ConnectionCache[Any], key: str, how: str) -> None:
        self.expectation._add(cache, "invalidation", key, how)

    @hookimpl
    def conncache_expiration(self, cache: ConnectionCache[Any], key: str) -> None:
        self.expectation._add(cache, "expiration", key, None)

    @hookimpl
    def conncache_eviction(self, cache: ConnectionCache[Any], key: str) -> None:
        self.expectation._add(cache, "eviction", key, None)


def expect_cache(
    *,
    hits: int | None = None,
    misses: int | None = None,
    sets: int | None = None,
    invalidations: int | None = None,
    expirations: int | None = None,
    evictions: int | None = None,
    cache: ConnectionCache[Any] | None = None,
) -> CacheExpectation:
    """A ``with`` block whose cache events must add up to the counters given.

    Each counter given (a non-negative int; None: not checked, at least one
    must be given) must equal what happened inside the block: on ``cache``
    when given (only that very cache's events count), else on every
    ``ConnectionCache`` together. Counted as ``stats`` counts (a waiter of a
    ``get_or_set`` is a hit, each entry ``clear`` removes an invalidation).

    On leaving a block that did not raise, a mismatch raises ``AssertionError``:
    what differed, then the block's events in order. A block that raises is
    not checked; its exception goes on unchanged. ``as`` gives the
    ``CacheExpectation``, whose ``counts`` and ``events`` say what was recorded.
    """
    given = {
        "hits": hits,
        "misses": misses,
        "sets": sets,
        "invalidations": invalidations,
        "expirations": expirations,
        "evictions": evictions,
    }
    expected = {name: _count(name, value) for name, value in given.items() if value is not None}
    if not expected:
        raise ValueError(
            "expect_cache needs at least one counter to check: hits, misses, sets, "
            "invalidations, expirations or evictions"
        )
    return CacheExpectation(expected, _cache(cache))


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"{name} must be an int or None, got {shown(value)} ({type(value).__name__})"
        )
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {shown(value)}")
    return value


def _cache(value: object) -> ConnectionCache[Any] | None:
    if value is None or isinstance(value, ConnectionCache):
        return value
    raise TypeError(
        f"cache must be a ConnectionCache or None, got {shown(value)} ({type(value).__name__})"
    )


def _listed(counts: dict[str, int], names: dict[str, int]) -> str:
    """``hits=2, misses=1``: the counters named in ``names``, in their order."""
    return ", ".join(f"{name}={counts[name]}" for name in COUNTERS if name in names)


def _cache_names(events: list[CacheEvent]) -> dict[int, str]:
    """A short name for each cache in ``events``: ``connection_cache`` for the singleton."""
    from ._singleton import connection_cache

    names: dict[int, str] = {}
    for event in events:
        cache = event.cache
        if id(cache) not in names:
            names[id(cache)] = (
                "connection_cache" if cache is connection_cache else f"cache@{id(cache):x}"
            )
    return names
