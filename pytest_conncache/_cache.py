"""ConnectionCache: the public API, sync and async, each method written once over a store.

The steps every method shares (counting, notifying, faults, the stale-flight
rule) are in ``_core.py``; ``get_or_set`` and ``aget_or_set`` in
``_cacheaside.py``; where entries live, in the store (``_memory.py``,
``_redis_store.py``). An awaitable twin differs from its sync method only in
awaiting the store.
"""

from __future__ import annotations

import re
import sys
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from functools import partial
from typing import Any, TypeVar, overload

from . import _validate
from ._cacheaside import CacheAside
from ._clock import Clock
from ._codecs import codec_for
from ._core import DEFAULT_TTL, any_key, ttl_too_small
from ._decorator import FROM_ANNOTATION, Decorator
from ._hooks import observers
from ._memory import RETIRED, MemoryStore
from ._removals import Removal
from ._stats import CacheStats, bump
from ._store import Backend, CorruptEntry, Entry, Sink, Store, TaggedEntry
from ._validate import Seconds

__all__ = ["DEFAULT_TTL", "ConnectionCache"]

V = TypeVar("V")
D = TypeVar("D")
T = TypeVar("T")


class ConnectionCache(CacheAside[V]):
    """A TTL cache for the results of slow calls, keyed by ``str``.

    ``ConnectionCache(default_ttl=300.0, *, clock=None, max_entries=None,
    value_type=None)``: ``value_type`` (a type Pydantic can validate, with the
    ``typed`` extra) is the type values are stored as and decoded into on a
    store that keeps bytes (Redis); each call may name its own.

    ``default_ttl`` is in seconds (or a ``timedelta``) and must be > 0;
    ``math.inf`` means entries never expire. ``clock`` is any zero-argument
    callable returning seconds; with None the cache reads the process default
    clock (``time.monotonic`` unless ``frozen_clock`` redirected it; wall time
    on a store shared between processes). ``max_entries`` bounds an
    in-memory cache: a new key past it removes expired entries first, then
    the least recently used live ones.
    """

    # -- introspection -------------------------------------------------------------

    @property
    def default_ttl(self) -> float:
        return self._default_ttl

    @property
    def max_entries(self) -> int | None:
        return self._max_entries

    @property
    def clock(self) -> Clock:
        """The callable this cache reads its time from."""
        if self._fixed_clock is not None:
            return self._fixed_clock.source
        return self._clock

    def now(self) -> float:
        """The cache's current clock reading, in seconds."""
        return self._clock.read()

    @property
    def backend(self) -> Backend | None:
        """The storage backend (e.g. a ``RedisBackend``), or None in memory."""
        return self._backend

    @property
    def value_type(self) -> Any:
        """The type this cache's values are stored as (``value_type=``), or None."""
        return self._value_type

    @property
    def backend_set_at(self) -> tuple[str, int] | None:
        """Where ``use_backend`` was last called (file, line), for the plugin's guard."""
        return self._backend_set_at

    @property
    def shared(self) -> bool:
        """True when other processes see this cache's entries (a Redis backend)."""
        return self._store.shared

    def __repr__(self) -> str:
        return f"<ConnectionCache {self._store.describe()} default_ttl={self._default_ttl!r}>"

    # -- the storage backend ---------------------------------------------------------

    def use_backend(self, backend: Backend | None) -> None:
        """Keep this cache's entries in ``backend`` from now on; None: in memory again.

        The one call production code makes at start-up to move the singleton,
        and with it every call site, to Redis::

            connection_cache.use_backend(RedisBackend.from_url(url, namespace="myapp"))

        Entries held in memory are dropped (uncounted), so none resurfaces
        later; counters carry on. Entries on a server stay where they are.
        """
        caller = sys._getframe(1)
        store: Store = (
            MemoryStore(self._max_entries)
            if backend is None
            else backend.open_store(
                max_entries=self._max_entries, count_near_hit=self._counters.near_hits.__next__
            )
        )
        with self._lock:
            old, self._store, self._backend = self._store, store, backend
            self._backend_set_at = (caller.f_code.co_filename, caller.f_lineno)
            self._clock = self._clock_for(store)
            self._mark_stale(any_key)
        old.close()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str,
        default_ttl: Seconds = DEFAULT_TTL,
        clock: Clock | None = None,
        value_type: Any = None,
        **options: Any,
    ) -> ConnectionCache[Any]:
        """A cache on the Redis server at ``url``, keys under ``{namespace}:``.

        ``value_type``: the type its values are decoded into (see ``get``).
        ``options`` go to ``RedisBackend.from_url``. Needs the ``redis`` extra.
        """
        from ._redis import RedisBackend

        cache: ConnectionCache[Any] = cls(default_ttl, clock=clock, value_type=value_type)
        cache.use_backend(RedisBackend.from_url(url, namespace=namespace, **options))
        return cache

    # -- reads ---------------------------------------------------------------------

    @overload
    def get(self, key: str) -> V | None: ...
    @overload
    def get(self, key: str, default: D) -> V | D: ...
    @overload
    def get(self, key: str, *, value_type: type[T]) -> T | None: ...
    @overload
    def get(self, key: str, default: D, *, value_type: type[T]) -> T | D: ...

    def get(self, key: str, default: Any = None, *, value_type: Any = None) -> Any:
        """The live value stored under ``key``, else ``default``.

        ``value_type`` (a type Pydantic can validate) types the result, and on
        Redis decodes the stored JSON into it (see ``_codecs``).
        """
        if type(key) is not str:
            _validate.key(key)
        try:
            entry = self._store.lookup(
                key, self._codec if value_type is None else codec_for(value_type)
            )
        except Exception as error:
            entry = self._read_failed(error, key)
        return self._read(key, entry, default)

    @overload
    async def aget(self, key: str) -> V | None: ...
    @overload
    async def aget(self, key: str, default: D) -> V | D: ...
    @overload
    async def aget(self, key: str, *, value_type: type[T]) -> T | None: ...
    @overload
    async def aget(self, key: str, default: D, *, value_type: type[T]) -> T | D: ...

    async def aget(self, key: str, default: Any = None, *, value_type: Any = None) -> Any:
        """``get``, awaitable."""
        if type(key) is not str:
            _validate.key(key)
        try:
            entry = await self._store.alookup(key, self._codec_of(value_type))
        except Exception as error:
            entry = self._read_failed(error, key)
        if entry is not None and entry.value is not RETIRED and not self._is_live(entry):
            await self._adrop_expired([entry])  # before _read, which would drop it blocking
            entry = None
        return self._read(key, entry, default)

    @overload
    def get_many(self, keys: Iterable[str]) -> dict[str, V]: ...
    @overload
    def get_many(self, keys: Iterable[str], *, value_type: type[T]) -> dict[str, T]: ...

    def get_many(self, keys: Iterable[str], *, value_type: Any = None) -> dict[str, Any]:
        """The live values of those ``keys`` that are live; each key a hit or a miss."""
        wanted = _validate.keys(keys)
        try:
            entries = self._store.lookup_many(wanted, self._codec_of(value_type))
        except Exception as error:
            entries = [self._read_failed(error)] * len(wanted)
        found, expired = self._sort_many(wanted, entries)
        self._drop_expired(expired)
        return self._count_many(wanted, found)

    @overload
    async def aget_many(self, keys: Iterable[str]) -> dict[str, V]: ...
    @overload
    async def aget_many(self, keys: Iterable[str], *, value_type: type[T]) -> dict[str, T]: ...

    async def aget_many(self, keys: Iterable[str], *, value_type: Any = None) -> dict[str, Any]:
        """``get_many``, awaitable."""
        wanted = _validate.keys(keys)
        try:
            entries = await self._store.alookup_many(wanted, self._codec_of(value_type))
        except Exception as error:
            entries = [self._read_failed(error)] * len(wanted)
        found, expired = self._sort_many(wanted, entries)
        await self._adrop_expired(expired)
        return self._count_many(wanted, found)

    def _sort_many(
        self, keys: list[str], entries: Sequence[Entry | CorruptEntry | None]
    ) -> tuple[dict[str, Any], list[Entry]]:
        """(live values by key, expired entries to remove); one clock reading."""
        now = self._clock.read()
        found: dict[str, Any] = {}
        expired: list[Entry] = []
        for key, entry in zip(keys, entries, strict=True):
            if entry is None:
                continue
            if isinstance(entry, CorruptEntry):
                self._read_failed(entry)
                continue
            value = entry.value
            if value is RETIRED:
                continue
            if now < entry.expires_at:
                found[key] = value
            else:
                expired.append(entry)
        return found, expired

    def _count_many(self, keys: list[str], found: dict[str, Any]) -> dict[str, Any]:
        """Count a hit for each key found and a miss for the others; ``found``."""
        if observers.active:
            with self._lock:
                for key in keys:
                    if key in found:
                        self._count_hit(key, value=found[key])
                    else:
                        self._count_miss(key)
        else:
            bump(self._hits, len(found))
            bump(self._misses, len(keys) - len(found))
        return found

    def __contains__(self, key: object) -> bool:
        """Live check: stored and not expired. Peeks: no counter, no recency."""
        return self._is_live(self._peek(_validate.key(key)))

    def has(self, key: str) -> bool:
        """Stored, regardless of expiration (as in the seed). Peeks."""
        return self._store.contains(_validate.key(key))

    async def ahas(self, key: str) -> bool:
        """``has``, awaitable."""
        return await self._store.acontains(_validate.key(key))

    def size(self) -> int:
        """Stored entries, expired ones not yet removed included."""
        return self._store.size()

    async def asize(self) -> int:
        """``size``, awaitable."""
        return await self._store.asize()

    def __len__(self) -> int:
        return self._store.size()

    def keys(self) -> list[str]:
        """The stored keys, as ``size()`` counts them (in memory in storage order)."""
        return self._store.keys()

    async def akeys(self) -> list[str]:
        """``keys``, awaitable."""
        return await self._store.akeys()

    def ttl_remaining(self, key: str) -> float | None:
        """Seconds left for a live entry, ``math.inf`` if it never expires, else None."""
        return self._seconds_left(self._peek(_validate.key(key)))

    async def attl_remaining(self, key: str) -> float | None:
        """``ttl_remaining``, awaitable."""
        return self._seconds_left(await self._apeek(_validate.key(key)))

    def expired_since(self, start: float) -> list[str]:
        """The keys of entries still stored whose ttl ended after ``start`` (a reading of
        this cache's clock): expired, and not yet removed, counted or seen by anyone.
        The plugin's report adds them to a test's expirations."""
        return self._store.expired_keys(start, self._clock.read())

    def peek_entry(self, key: str) -> Entry | None:
        """The stored entry (value, ``expires_at``, ``ttl``), live or not; None if absent.

        Counts nothing and refreshes no recency (the assertion helpers use it).
        An entry this package cannot read back counts as absent.
        """
        return self._peek(_validate.key(key))

    def last_removal(self, key: str) -> Removal | None:
        """Why and when ``key`` last left this cache, if it is in the removal record."""
        with self._lock:
            return self._removed.get(key)

    def removals(self) -> dict[str, Removal]:
        """The removal record: the most recently removed keys, oldest first."""
        with self._lock:
            return self._removed.snapshot()

    def _peek(self, key: str) -> Entry | None:
        try:
            return self._visible(self._store.peek(key))
        except CorruptEntry:
            return None

    async def _apeek(self, key: str) -> Entry | None:
        try:
            return self._visible(await self._store.apeek(key))
        except CorruptEntry:
            return None

    # -- stats -----------------------------------------------------------------------

    @property
    def stats(self) -> CacheStats:
        """A snapshot of the counters (see ``CacheStats``)."""
        return self._snapshot()

    def reset_stats(self) -> None:
        """Zero the counters and forget which keys were removed."""
        self._zero()

    def reset(self, *, empty: bool = True) -> None:
        """For test isolation: zero the stats and, with ``empty``, drop every entry.

        Unlike ``clear`` the removals count nothing and reach no observer. On a
        shared store ``empty`` deletes the entries of this cache's namespace
        for every process.
        """
        self._zero(emptying=empty)
        if empty:
            self._store.wipe()

    # -- writes ----------------------------------------------------------------------

    def set(
        self,
        key: str,
        data: V,
        ttl: Seconds | None = None,
        *,
        tags: Iterable[str] = (),
        value_type: Any = None,
    ) -> None:
        """Store ``data`` under ``key`` for ``ttl`` seconds (default: the cache's).

        ``tags`` label the entry for ``invalidate_tag``; ``value_type`` encodes it
        as that type on Redis (see ``get``).
        """
        # The hot path: _new_entry and _count_set inlined (python -m benchmarks core).
        seconds = self._default_ttl if ttl is None else _validate.seconds(ttl, "ttl")
        if type(key) is not str or not key.isascii():
            _validate.key(key)
        now = self._clock.read()
        expires_at = now + seconds
        if expires_at <= now:
            raise ttl_too_small(seconds, now)
        if tags:
            entry: Entry = TaggedEntry(key, data, expires_at, seconds, _validate.tags(tags))
        else:
            entry = Entry(key, data, expires_at, seconds)
        if self._flights or self._async_flights:
            self._mark_stale(key.__eq__)  # before the write: see _cacheaside
        try:
            displaced = self._store.put(entry, now, self._codec_of(value_type))
        except Exception as error:
            self._write_failed(error)
            return
        if observers.active or displaced or self._removed:
            self._count_set(key, displaced, now, seconds, data)
        else:
            next(self._sets)

    async def aset(
        self,
        key: str,
        data: V,
        ttl: Seconds | None = None,
        *,
        tags: Iterable[str] = (),
        value_type: Any = None,
    ) -> None:
        """``set``, awaitable."""
        entry, now = self._new_entry(key, data, self._ttl(ttl), tags=tags)
        self._mark_stale(key.__eq__)
        with self._guard(self._store.fail_open_reads):
            displaced = await self._store.aput(entry, now, self._codec_of(value_type))
            self._count_set(key, displaced, now, entry.ttl, data)

    def set_many(
        self,
        mapping: Mapping[str, V],
        ttl: Seconds | None = None,
        *,
        tags: Iterable[str] = (),
        value_type: Any = None,
    ) -> None:
        """Store every pair of ``mapping`` with the same ``ttl`` and ``tags``; one round
        trip on Redis."""
        entries, now = self._new_entries(mapping, ttl, tags)
        with self._guard(self._store.fail_open_reads):
            displaced = self._store.put_many(entries, now, self._codec_of(value_type))
            self._count_sets(entries, displaced, now)

    async def aset_many(
        self,
        mapping: Mapping[str, V],
        ttl: Seconds | None = None,
        *,
        tags: Iterable[str] = (),
        value_type: Any = None,
    ) -> None:
        """``set_many``, awaitable."""
        entries, now = self._new_entries(mapping, ttl, tags)
        with self._guard(self._store.fail_open_reads):
            displaced = await self._store.aput_many(entries, now, self._codec_of(value_type))
            self._count_sets(entries, displaced, now)

    def _new_entries(
        self, mapping: Mapping[str, Any], ttl: Seconds | None, tags: Iterable[str]
    ) -> tuple[list[Entry], float]:
        if not isinstance(mapping, Mapping):
            raise TypeError(
                f"mapping must be a Mapping of str to values, got {_validate.shown(mapping)} "
                f"({type(mapping).__name__})"
            )
        _validate.keys(mapping, "mapping keys")
        seconds = self._ttl(ttl)
        now = self._clock.read()
        labels = _validate.tags(tags)
        entries = [
            self._new_entry(key, value, seconds, now, labels)[0] for key, value in mapping.items()
        ]
        if self._flights or self._async_flights:
            wanted = set(mapping)
            self._mark_stale(wanted.__contains__)
        return entries, now

    # -- invalidation ----------------------------------------------------------------

    def invalidate(self, key: str) -> bool:
        """Remove ``key``; True if an entry was stored."""
        keys, count = self._doomed([_validate.key(key)], "invalidate")
        return self._drain(lambda sink: sink(self._store.remove(keys)), count) > 0

    async def ainvalidate(self, key: str) -> bool:
        """``invalidate``, awaitable."""
        keys, count = self._doomed([_validate.key(key)], "invalidate")
        return await self._adrain(partial(self._aremove, keys), count) > 0

    def invalidate_many(self, keys: Iterable[str]) -> int:
        """Remove the listed keys; how many were stored. One round trip on Redis."""
        doomed, count = self._doomed(_validate.keys(keys), "invalidate_many")
        return self._drain(lambda sink: sink(self._store.remove(doomed)), count)

    async def ainvalidate_many(self, keys: Iterable[str]) -> int:
        """``invalidate_many``, awaitable."""
        doomed, count = self._doomed(_validate.keys(keys), "invalidate_many")
        return await self._adrain(partial(self._aremove, doomed), count)

    async def _aremove(self, keys: list[str], sink: Sink[str]) -> None:
        sink(await self._store.aremove(keys))

    def _doomed(self, keys: list[str], how: str) -> tuple[list[str], Callable[[list[str]], int]]:
        """Before removing ``keys``: mark their flights stale; how to count removals."""
        count = self._counter(how)
        if self._flights or self._async_flights:
            wanted = set(keys)
            self._mark_stale(wanted.__contains__)
        return keys, count

    def _counter(self, how: str) -> Callable[[list[str]], int]:
        """Counts removed keys as invalidations by ``how``, at now (read here, before
        anything changes, so that a failing clock changes nothing)."""
        now = self._clock.read()
        return lambda keys: self._count_removed(keys, now, how)

    def invalidate_pattern(self, pattern: str | re.Pattern[str]) -> int:
        """Remove every key where ``pattern.search(key)`` matches; return how many.

        Unanchored patterns match anywhere, like JavaScript's ``RegExp.test``.
        """
        search, count = self._pattern_doomed(pattern)
        return self._drain(partial(self._store.remove_matching, search), count)

    async def ainvalidate_pattern(self, pattern: str | re.Pattern[str]) -> int:
        """``invalidate_pattern``, awaitable; on Redis it awaits between SCAN batches."""
        search, count = self._pattern_doomed(pattern)
        return await self._adrain(partial(self._store.aremove_matching, search), count)

    def _pattern_doomed(
        self, pattern: str | re.Pattern[str]
    ) -> tuple[Callable[[str], Any], Callable[[list[str]], int]]:
        search = _validate.pattern(pattern).search
        count = self._counter("invalidate_pattern")
        self._mark_stale(search)
        return search, count

    def invalidate_prefix(self, prefix: str) -> int:
        """Remove every key that starts with the literal ``prefix``; return how many.

        Uses the store's sorted key index: the cost grows with the keys
        removed, not with the size of the cache.
        """
        count = self._prefix_doomed(prefix)
        return self._drain(partial(self._store.remove_prefix, prefix), count)

    async def ainvalidate_prefix(self, prefix: str) -> int:
        """``invalidate_prefix``, awaitable."""
        count = self._prefix_doomed(prefix)
        return await self._adrain(partial(self._store.aremove_prefix, prefix), count)

    def _prefix_doomed(self, prefix: str) -> Callable[[list[str]], int]:
        _validate.key(prefix, "prefix")
        count = self._counter("invalidate_prefix")
        self._mark_stale(lambda key: key.startswith(prefix))
        return count

    def invalidate_tag(self, tag: str) -> int:
        """Remove every entry carrying ``tag``; how many. Costs what it removes."""
        labels, count = self._tags_doomed([tag])
        return self._drain(partial(self._store.remove_tags, labels), count)

    async def ainvalidate_tag(self, tag: str) -> int:
        """``invalidate_tag``, awaitable."""
        labels, count = self._tags_doomed([tag])
        return await self._adrain(partial(self._store.aremove_tags, labels), count)

    def invalidate_tags(self, tags: Iterable[str]) -> int:
        """Remove every entry carrying any of ``tags``; how many (each entry once)."""
        labels, count = self._tags_doomed(tags)
        return self._drain(partial(self._store.remove_tags, labels), count)

    async def ainvalidate_tags(self, tags: Iterable[str]) -> int:
        """``invalidate_tags``, awaitable."""
        labels, count = self._tags_doomed(tags)
        return await self._adrain(partial(self._store.aremove_tags, labels), count)

    def _tags_doomed(
        self, tags: Iterable[str]
    ) -> tuple[tuple[str, ...], Callable[[list[str]], int]]:
        labels = _validate.tags(tags)
        count = self._counter("invalidate_tag")
        wanted = set(labels)
        self._mark_stale(lambda key: False, wanted)
        return labels, count

    def clear(self) -> None:
        """Remove every entry; each one counts as an invalidation."""
        self._drain(self._store.remove_all, self._all_doomed())

    async def aclear(self) -> None:
        """``clear``, awaitable."""
        await self._adrain(self._store.aremove_all, self._all_doomed())

    def _all_doomed(self) -> Callable[[list[str]], int]:
        count = self._counter("clear")
        self._mark_stale(any_key)
        return count

    def purge_expired(self) -> int:
        """Remove every expired entry now; return how many."""
        now = self._clock.read()
        return self._drain(partial(self._store.purge_expired, now), self._count_expired)

    async def apurge_expired(self) -> int:
        """``purge_expired``, awaitable."""
        now = self._clock.read()
        return await self._adrain(partial(self._store.apurge_expired, now), self._count_expired)

    def _drain(self, remove: Callable[[Sink[Any]], None], count: Callable[[Any], int]) -> int:
        """Run a removal, counting each batch as it comes; a fault ends it (``_guard``)."""
        tally = Tally(count)
        with self._guard(self._store.fail_open_invalidations):
            remove(tally)
        return tally.total

    async def _adrain(
        self, remove: Callable[[Sink[Any]], Awaitable[None]], count: Callable[[Any], int]
    ) -> int:
        tally = Tally(count)
        with self._guard(self._store.fail_open_invalidations):
            await remove(tally)
        return tally.total

    # -- the decorator ---------------------------------------------------------------

    def cached(
        self,
        key: str,
        ttl: Seconds | Callable[[Any], Seconds] | None = None,
        *,
        tags: Iterable[str] = (),
        cache_if: Callable[[Any], object] | None = None,
        value_type: Any = FROM_ANNOTATION,
    ) -> Decorator:
        """Decorator: cache-aside around a function, keyed by its arguments.

        ``key`` and each of ``tags`` are ``str.format`` templates over the
        function's parameter names, defaults applied (``"user-record:{token}:{id}"``,
        ``"{user.id}"``, ``"{n:03d}"``); a field naming no parameter fails here.
        A call goes through ``get_or_set`` (``aget_or_set`` for ``async def``),
        so concurrent calls of one key share one call of the function. ``ttl``
        is seconds, a ``timedelta`` or a callable of the result;
        ``cache_if(result)`` false returns the result without storing it.
        ``value_type`` defaults to the return annotation (the type values come
        back as from Redis, when Pydantic can decode into it); an explicit one
        overrides it, and None leaves values to the cache's own ``value_type``
        or serializer.

        The wrapper keeps the function's signature for type checkers, and has
        ``key(...)``, ``invalidate(...)`` and ``ainvalidate(...)`` taking the
        call's arguments. Works on methods (``self`` is a parameter like any
        other) and under ``@staticmethod``.
        """
        return Decorator(self, key, ttl, tags, cache_if, value_type)


class Tally:
    """A sink that counts each batch a removal hands it, and keeps the total."""

    __slots__ = ("count", "total")

    def __init__(self, count: Callable[[Any], int]) -> None:
        self.count = count
        self.total = 0

    def __call__(self, batch: list[Any]) -> None:
        self.total += self.count(batch)
