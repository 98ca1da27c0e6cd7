"""CacheCore: what every ConnectionCache operation shares, whatever the store.

State (the store, the clock, counters, the removal record, running flights)
and the steps the public methods of ``_cache.py`` and ``_cacheaside.py``
are built from: reading an entry into an answer, making a new entry,
marking running flights stale, counting and notifying, and deciding what a
store's error means.

Locking: ``_lock`` guards the cache's own bookkeeping and is held while
observers are called, never across a store call, so a slow server makes no
other thread, and no event loop, wait for it. Each event is counted and
reported right after the store call that caused it, under the lock:
observers see one cache's events one at a time, in the order the counters
changed, on every store.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

from . import _validate
from ._clock import Clock, DefaultClock, FixedClock, default_clock, default_wall_clock
from ._codecs import Codec, codec_for
from ._flight import AsyncFlights, Flight, mark_stale
from ._hooks import observers
from ._memory import RETIRED, MemoryStore
from ._registry import track
from ._removals import REMOVAL_MEMORY, Removal, RemovalLog
from ._stats import CacheStats, Counters, bump
from ._store import Backend, CorruptEntry, Displaced, Entry, Store, TaggedEntry
from ._validate import Seconds

V = TypeVar("V")

DEFAULT_TTL = 300.0

log = logging.getLogger("pytest_conncache")

# The removal record's ttl for entries removed without being read first.
_UNREAD = float("nan")

# How many keys "cannot be read" warnings name, each once.
_CORRUPT_WARNINGS = 1024


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


#: What ``_answer`` returns when a read found no live value.
MISSING: Any = _Missing()


def any_key(key: str) -> bool:
    return True


def ttl_too_small(seconds: float, now: float) -> ValueError:
    return ValueError(
        f"ttl {seconds!r} is too small for the clock: at {now!r} seconds, "
        "now + ttl == now (the entry would be expired when stored)"
    )


class CacheCore(Generic[V]):
    """State and shared steps of ``ConnectionCache`` (see the module docstring)."""

    def __init__(
        self,
        default_ttl: Seconds = DEFAULT_TTL,
        *,
        clock: Clock | None = None,
        max_entries: int | None = None,
        value_type: Any = None,
    ) -> None:
        self._default_ttl = _validate.seconds(default_ttl, "default_ttl")
        self._max_entries = _validate.max_entries(max_entries)
        if clock is not None:
            _validate.callable_(clock, "clock")
        self._fixed_clock = None if clock is None else FixedClock(clock)
        self._value_type = value_type
        self._codec = codec_for(value_type)
        self._lock = threading.RLock()
        self._backend: Backend | None = None
        self._backend_set_at: tuple[str, int] | None = None
        self._store: Store = MemoryStore(self._max_entries)
        self._clock: DefaultClock | FixedClock = self._clock_for(self._store)
        self._removed = RemovalLog(REMOVAL_MEMORY)
        self._flights: dict[str, Flight] = {}
        self._async_flights = AsyncFlights()
        self._fills = 0  # get_or_set fills landed so far: see CacheAside._join
        self._landed: dict[str, tuple[int, Any, BaseException | None]] = {}
        # The counters count without the lock while nobody observes (see
        # _stats.Counters); the hot ones are also held here, a lookup nearer.
        self._counters = Counters()
        self._hits, self._misses, self._sets = (
            self._counters.hits,
            self._counters.misses,
            self._counters.sets,
        )
        self._corrupt_warned: set[str] = set()
        self._refusing = False  # warned that the store refuses get_or_set's writes
        track(self, self._counters)

    def _clock_for(self, store: Store) -> DefaultClock | FixedClock:
        if self._fixed_clock is not None:
            return self._fixed_clock
        return default_wall_clock if store.shared else default_clock

    # -- reading an entry ------------------------------------------------------------

    def _read(self, key: str, entry: Entry | None, default: Any) -> Any:
        """What ``get`` answers once the store gave ``entry``: the live value (a hit),
        else ``default`` (a miss, after removing the entry if it expired)."""
        if entry is not None:
            value = entry.value  # before the expiry: see _memory's retired entries
            now = self._clock.read()
            if now < entry.expires_at and value is not RETIRED:
                if observers.active:
                    # _count_hit inlined: the plugin records every hit of a test
                    ring = observers.ring
                    if ring is not None:
                        ring.append((self, "hit", key, now, None))
                    if observers.hooked:
                        self._count_hit(key, now, recorded=ring is not None, value=value)
                        return value
                next(self._hits)
                return value
            self._drop_expired(self._expired(entry))
        elif not key.isascii():
            _validate.key(key)  # found nothing: was it a key at all?
        if observers.active:
            self._count_miss(key)
        else:
            next(self._misses)
        return default

    def _answer(self, key: str, entry: Entry | None) -> Any:
        """The live value of ``entry`` (one hit counted), else MISSING (nothing counted)."""
        if entry is None:
            return MISSING
        value = entry.value
        now = self._clock.read()
        if now < entry.expires_at and value is not RETIRED:
            if observers.active:
                # _count_hit inlined, as in _read: the plugin records every hit
                ring = observers.ring
                if ring is not None:
                    ring.append((self, "hit", key, now, None))
                if observers.hooked:
                    self._count_hit(key, now, recorded=ring is not None, value=value)
                    return value
            next(self._hits)
            return value
        return MISSING

    @staticmethod
    def _expired(entry: Entry | None) -> list[Entry]:
        """``[entry]`` if a read found it expired (to be removed), else ``[]``."""
        return [] if entry is None or entry.value is RETIRED else [entry]

    def _is_live(self, entry: Entry | None) -> bool:
        return entry is not None and self._clock.read() < entry.expires_at

    def _seconds_left(self, entry: Entry | None) -> float | None:
        if entry is None:
            return None
        left = entry.expires_at - self._clock.read()
        return left if left > 0 else None

    @staticmethod
    def _visible(entry: Entry | None) -> Entry | None:
        return None if entry is None or entry.value is RETIRED else entry

    # -- making entries ----------------------------------------------------------------

    def _ttl(self, ttl: Seconds | None) -> float:
        return self._default_ttl if ttl is None else _validate.seconds(ttl, "ttl")

    def _new_entry(
        self,
        key: str,
        value: Any,
        seconds: float,
        now: float | None = None,
        tags: Iterable[str] = (),
    ) -> tuple[Entry, float]:
        """An entry expiring ``seconds`` from now, and now (read before any change)."""
        if type(key) is not str or not key.isascii():
            _validate.key(key)
        labels = _validate.tags(tags) if tags else ()
        if now is None:
            now = self._clock.read()
        expires_at = now + seconds
        if expires_at <= now:
            raise ttl_too_small(seconds, now)
        if labels:
            return TaggedEntry(key, value, expires_at, seconds, labels), now
        return Entry(key, value, expires_at, seconds), now

    def _codec_of(self, value_type: Any) -> Codec | None:
        """The codec of a call's ``value_type``, else the cache's own."""
        return self._codec if value_type is None else codec_for(value_type)

    # -- running flights -----------------------------------------------------------------

    def _mark_stale(
        self, matches: Callable[[str], object], tags: set[str] | frozenset[str] = frozenset()
    ) -> None:
        """Keep running factories of matching keys (or carrying one of ``tags``) from
        storing what they return.

        Called before the store is changed, so that a factory finishing in
        between is refused by ``put_if_unchanged`` (see ``_store.Store``).
        """
        with self._lock:
            if self._flights or self._async_flights:
                mark_stale(self._flights, self._async_flights, matches, tags)

    # -- counting and notifying (each under the lock) ------------------------------------

    def _tell(
        self, kind: str, key: str, now: float | None, detail: Any = None, value: Any = None
    ) -> None:
        """An event to the plugin's ring and to observers (under the lock when hooked)."""
        ring = observers.ring
        if ring is not None:
            if now is None:
                # The operation read no clock (a miss). A default clock has no
                # side effects to read; an injected one is left alone (NaN:
                # the events section shows the cache's previous time).
                now = self._clock.read() if self._fixed_clock is None else math.nan
            ring.append((self, kind, key, now, detail))
        if observers.hooked:
            hook = observers.hook
            if kind == "invalidation":
                hook.conncache_invalidation(cache=self, key=key, how=detail)
            elif kind == "set":
                hook.conncache_set(cache=self, key=key, value=value)
            elif kind == "expiration":
                hook.conncache_expiration(cache=self, key=key)
            elif kind == "eviction":
                hook.conncache_eviction(cache=self, key=key)
            elif kind == "miss":
                hook.conncache_miss(cache=self, key=key)
            else:
                hook.conncache_hit(cache=self, key=key, value=value)

    def _count_hit(
        self, key: str, now: float | None = None, recorded: bool = False, value: Any = None
    ) -> None:
        if not observers.active:
            next(self._hits)
            return
        with self._lock:
            next(self._hits)
            if recorded:  # the ring has it already (see _read)
                observers.hook.conncache_hit(cache=self, key=key, value=value)
            else:
                self._tell("hit", key, now, value=value)

    def _count_miss(self, key: str) -> None:
        if not observers.active:
            next(self._misses)
            return
        with self._lock:
            next(self._misses)
            self._tell("miss", key, None)

    def _count_set(
        self, key: str, displaced: list[Displaced], now: float, ttl: float = 0.0, value: Any = None
    ) -> None:
        if not (displaced or self._removed or observers.active):
            next(self._sets)  # the hot path: nothing else to record
            return
        with self._lock:
            if displaced:
                self._count_displaced(displaced, now)
            next(self._sets)
            if self._removed:
                self._removed.forget(key)
            if observers.active:
                self._tell("set", key, now, ttl, value)

    def _count_sets(self, entries: Sequence[Entry], displaced: list[Displaced], now: float) -> None:
        with self._lock:
            if displaced:
                self._count_displaced(displaced, now)
            for entry in entries:
                self._count_set(entry.key, [], now, entry.ttl, entry.value)

    def _count_displaced(self, displaced: list[Displaced], now: float) -> None:
        """Under the lock: entries a bounded store pushed out to make room."""
        for entry, why in displaced:
            if why == "expired":
                self._count_expired([entry])
                continue
            next(self._counters.evictions)
            self._removed.record(entry.key, Removal("evicted", now, entry.ttl))
            if observers.active:
                self._tell("eviction", entry.key, now)

    def _count_expired(self, entries: Sequence[Entry]) -> int:
        if not entries:
            return 0
        with self._lock:
            bump(self._counters.expirations, len(entries))
            self._removed.record_many(
                (e.key, Removal("expired", e.expires_at, e.ttl)) for e in entries[-REMOVAL_MEMORY:]
            )
            if observers.active:
                for entry in entries:
                    self._tell("expiration", entry.key, entry.expires_at)
        return len(entries)

    def _count_removed(self, keys: list[str], now: float, how: str) -> int:
        if not keys:
            return 0
        with self._lock:
            bump(self._counters.invalidations, len(keys))
            self._removed.record_many(
                (key, Removal(how, now, _UNREAD)) for key in keys[-REMOVAL_MEMORY:]
            )
            if observers.active:
                for key in keys:
                    self._tell("invalidation", key, now, how)
        return len(keys)

    def _count_error(self) -> None:
        next(self._counters.errors)

    def _snapshot(self) -> CacheStats:
        with self._lock:
            return CacheStats(*self._counters.since_reset())

    def _zero(self, *, emptying: bool = False) -> None:
        """Zero the counters and forget the removals. ``emptying``: the store is
        emptied next, so every running factory is marked stale first (as
        ``_mark_stale`` does; one lock for both: the plugin resets every
        cache before every test)."""
        with self._lock:
            if emptying and (self._flights or self._async_flights):
                mark_stale(self._flights, self._async_flights, any_key)
            self._counters.reset()
            if self._removed:
                self._removed.clear()

    # -- what a store's error means --------------------------------------------------------

    def _read_failed(self, error: Exception, key: str | None = None) -> Entry | None:
        """A read that raised: a miss if the entry is unreadable or the server is
        unreachable (with fail-open reads), counted in ``stats.errors``; else re-raised
        (as the key's own error when the key was not one: the store could not encode it)."""
        if key is not None:
            _validate.key(key)
        if isinstance(error, CorruptEntry):
            self._count_error()
            self._warn_corrupt(error)
            return None
        if self._store.fault_kind(error) == "unreachable" and self._store.fail_open_reads:
            self._count_error()
            return None
        raise error

    def _write_failed(self, error: Exception) -> None:
        """A ``set`` that raised: an unreachable server is served open if configured."""
        if self._store.fault_kind(error) == "unreachable" and self._store.fail_open_reads:
            self._count_error()
            return
        raise error

    def _fill_failed(self, error: Exception, key: str) -> None:
        """get_or_set could not store the value it computed: it still returns it.

        An unreachable server (with fail-open reads) or one refusing writes
        (out of memory, read-only) counts one error; a refusal warns once
        until a write succeeds again. Other errors (an unencodable value) raise.
        """
        kind = self._store.fault_kind(error)
        if kind is None or (kind == "unreachable" and not self._store.fail_open_reads):
            raise error
        next(self._counters.errors)
        with self._lock:
            first = kind == "refused" and not self._refusing
            if first:
                self._refusing = True
        if first:
            log.warning(
                "%r refuses writes (%s: %s): get_or_set returns the values it computes "
                "without caching them until the store takes writes again",
                self,
                type(error).__name__,
                error,
            )

    def _fill_stored(self) -> None:
        if self._refusing:
            with self._lock:
                self._refusing = False

    @contextmanager
    def _guard(self, fail_open: bool) -> Iterator[None]:
        """Around a removal: an unreachable server raises, or is counted in
        ``stats.errors`` and swallowed when ``fail_open``; other errors raise."""
        try:
            yield
        except Exception as error:
            if not fail_open or self._store.fault_kind(error) != "unreachable":
                raise
            self._count_error()

    def _warn_corrupt(self, error: CorruptEntry) -> None:
        with self._lock:
            warned = self._corrupt_warned
            if error.key in warned or len(warned) >= _CORRUPT_WARNINGS:
                return
            warned.add(error.key)
        log.warning("%s; served as a miss until it is replaced (%r)", error, self)

    # -- expiry on read ------------------------------------------------------------------

    def _drop_expired(self, entries: list[Entry]) -> None:
        if entries:  # checked here, so that the hot paths call without looking
            try:
                removed = self._store.remove_expired(entries)
            except Exception as error:
                self._read_failed(error)
                return
            self._count_expired(removed)

    async def _adrop_expired(self, entries: list[Entry]) -> None:
        if entries:
            try:
                removed = await self._store.aremove_expired(entries)
            except Exception as error:
                self._read_failed(error)
                return
            self._count_expired(removed)
