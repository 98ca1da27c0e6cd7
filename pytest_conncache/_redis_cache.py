"""RedisCache: the ConnectionCache API, with the SPEC's semantics, on a RedisBackend.

One RedisCache serves one ConnectionCache. Storage is Redis; everything else
stays with the cache object: argument validation, counters (per process),
observer hooks, in-process single-flight and the removal log the assertion
helpers read. Network calls happen outside the cache's lock, except the one
store that ends a ``get_or_set`` (so an invalidation racing the factory in
this process cannot be overtaken by a stale store).
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, cast

from . import _validate
from ._cache import _Entry
from ._clock import Clock, FixedClock
from ._envelope import decode, encode, server_px
from ._flight import Flight
from ._hooks import observers
from ._redis import FAULTS, RedisBackend
from ._redis_lock import NOTHING as _NOTHING
from ._redis_lock import AsyncCrossProcessLock, CrossProcessLock
from ._removals import REMOVAL_MEMORY, Removal
from ._stats import CacheStats
from ._validate import Seconds
from ._wallclock import default_wall_clock

if TYPE_CHECKING:
    from ._cache import ConnectionCache

# The removal log's ttl for entries removed without reading them first.
_UNKNOWN_TTL = math.nan

# Cache methods a RedisCache replaces on the ConnectionCache instance.
METHODS = (
    "get",
    "set",
    "has",
    "size",
    "keys",
    "ttl_remaining",
    "reset_stats",
    "invalidate",
    "invalidate_pattern",
    "invalidate_prefix",
    "clear",
    "purge_expired",
    "get_or_set",
    "aget_or_set",
    "now",
    "_wipe",
    "_peek",
    "_similar_candidates",
)


class RedisCache:
    def __init__(self, cache: ConnectionCache[Any], backend: RedisBackend) -> None:
        if cache.max_entries is not None:
            raise ValueError(
                "max_entries is not supported on Redis: bound memory with the server's "
                "maxmemory and maxmemory-policy instead"
            )
        self._cache = cache
        self._backend = backend
        self._client = backend.client
        self._prefix = backend.prefix
        self._serializer = backend.serializer
        # An injected clock stays; the process default becomes wall time,
        # because monotonic readings mean nothing to another process.
        self._clock = cache._clock if isinstance(cache._clock, FixedClock) else default_wall_clock
        self._errors = 0

    # -- BoundBackend --------------------------------------------------------

    @property
    def backend(self) -> RedisBackend:
        return self._backend

    def methods(self) -> dict[str, Callable[..., Any]]:
        return {name: getattr(self, name) for name in METHODS}

    def clock(self) -> Clock:
        return self._clock.read

    def describe(self) -> str:
        cache = self._cache
        return (
            f"<ConnectionCache backend=redis namespace={self._backend.namespace!r}"
            f" default_ttl={cache.default_ttl!r}>"
        )

    def stats(self) -> CacheStats:
        with self._cache._lock:  # errors and the rest from one moment
            return self._cache._counters(errors=self._errors)

    def reset_stats(self) -> None:
        cache = self._cache
        with cache._lock:
            cache._zero_counters()
            self._errors = 0

    def now(self) -> float:
        return self._clock.read()

    # -- faults ----------------------------------------------------------------

    def _fault(self, error: Exception, operation: str, fail_open: bool) -> None:
        """Count and log a fault that is served open; re-raise it otherwise."""
        if not fail_open:
            raise error
        with self._cache._lock:
            self._errors += 1
        self._backend.report_fault(error, operation)

    # -- serialisation -------------------------------------------------------

    def _dumps(self, key: str, value: Any) -> bytes:
        try:
            return self._serializer.dumps(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"value for key {key!r} cannot be stored with {self._serializer!r}: "
                f"{type(value).__name__} {value!r:.80} ({error})"
            ) from error

    def _read(self, key: str) -> bytes | None:
        """The raw entry; raises on a fault (peeks and invalidations use it)."""
        raw = cast("bytes | None", self._client.get(self._prefix + key))
        return raw

    # -- reads -----------------------------------------------------------------

    def get(self, key: str, default: Any = None) -> Any:
        if type(key) is not str:
            _validate.key(key)
        hit, value = self._lookup(key)
        if hit:
            return value
        self._count_miss(key)
        return default

    def _lookup(self, key: str) -> tuple[bool, Any]:
        """(True, value) and one hit for a live entry, else (False, None).

        A fault is served open (counted as an error, not as a miss: the caller
        counts the miss) or raised, as configured.
        """
        try:
            raw = cast("bytes | None", self._client.get(self._prefix + key))
        except FAULTS as error:
            self._fault(error, "get", self._backend.fail_open_reads)
            return False, None
        if self._backend.in_outage:
            self._backend.report_recovery()
        if raw is None:
            return False, None
        payload, expires_at, ttl = decode(raw)
        if self._clock.read() < expires_at:
            value = self._serializer.loads(payload)
            cache = self._cache
            with cache._lock:
                cache._hits += 1
            if observers.active:
                observers.hook.conncache_hit(cache=cache, key=key)
            return True, value
        self._expire(key, raw, expires_at, ttl)
        return False, None

    def _expire(self, key: str, raw: bytes, expires_at: float, ttl: float) -> None:
        """Remove an expired entry unless another writer replaced it; count it if removed."""
        try:
            removed = self._backend.remove_if_equal([(self._prefix + key).encode()], [raw])
        except FAULTS as error:
            self._fault(error, "get", self._backend.fail_open_reads)
            return
        if removed:
            self._count_expirations([(key, expires_at, ttl)])

    def _count_expirations(self, expired: list[tuple[str, float, float]]) -> None:
        cache = self._cache
        with cache._lock:
            cache._expirations += len(expired)
            cache._removed.record_many(
                (key, Removal("expired", at, ttl)) for key, at, ttl in expired[-REMOVAL_MEMORY:]
            )
        if observers.active:
            for key, _, _ in expired:
                observers.hook.conncache_expiration(cache=cache, key=key)

    def _count_miss(self, key: str) -> None:
        cache = self._cache
        with cache._lock:
            cache._misses += 1
        if observers.active:
            observers.hook.conncache_miss(cache=cache, key=key)

    # -- peeks -----------------------------------------------------------------

    def _entry(self, key: str) -> _Entry | None:
        raw = self._read(key)
        if raw is None:
            return None
        payload, expires_at, ttl = decode(raw)
        return _Entry(key, self._serializer.loads(payload), expires_at, ttl)

    def contains(self, key: object) -> bool:
        raw = self._read(_validate.key(key))
        return raw is not None and self._clock.read() < decode(raw)[1]

    def has(self, key: str) -> bool:
        return bool(self._client.exists(self._prefix + _validate.key(key)))

    def size(self) -> int:
        return len({name for page in self._backend.scan_entries() for name, _ in page})

    def keys(self) -> list[str]:
        """The stored keys, sorted (Redis has no storage order)."""
        return sorted({key for page in self._backend.scan_entries() for _, key in page})

    def ttl_remaining(self, key: str) -> float | None:
        raw = self._read(_validate.key(key))
        if raw is None:
            return None
        left = decode(raw)[1] - self._clock.read()
        return left if left > 0 else None

    def _similar_candidates(self) -> tuple[frozenset[str], dict[str, Removal], float]:
        """(stored keys, remembered removals, now) for the helpers' "similar keys" hint."""
        stored = frozenset(self.keys())
        with self._cache._lock:
            return stored, self._cache._removed.snapshot(), self._clock.read()

    def _peek(self, key: str) -> tuple[_Entry | None, Removal | None, float]:
        entry = self._entry(key)
        with self._cache._lock:
            return entry, self._cache._removed.get(key), self._clock.read()

    # -- writes ----------------------------------------------------------------

    def set(self, key: str, data: Any, ttl: Seconds | None = None) -> None:
        cache = self._cache
        seconds = cache.default_ttl if ttl is None else _validate.seconds(ttl, "ttl")
        if type(key) is not str:
            _validate.key(key)
        stored = self._store(key, data, seconds)
        with cache._lock:
            if cache._flights or cache._async_flights:
                cache._mark_stale(key.__eq__)
        if stored:
            self._count_set(key)

    def _store(self, key: str, value: Any, seconds: float) -> bool:
        """Write one entry; False if a fault was served open."""
        blob = encode(self._dumps(key, value), self._clock.read() + seconds, seconds)
        px = server_px(seconds)
        try:
            self._backend.store(key, blob, px)
        except FAULTS as error:
            self._fault(error, "set", self._backend.fail_open_reads)
            return False
        if self._backend.in_outage:
            self._backend.report_recovery()
        return True

    def _count_set(self, key: str) -> None:
        cache = self._cache
        with cache._lock:
            cache._sets += 1
            if cache._removed:
                cache._removed.forget(key)
        if observers.active:
            observers.hook.conncache_set(cache=cache, key=key)

    # -- invalidation ----------------------------------------------------------

    def invalidate(self, key: str) -> bool:
        _validate.key(key)
        self._mark_stale(key.__eq__)
        try:
            removed = self._backend.remove([(self._prefix + key).encode()])
        except FAULTS as error:
            self._fault(error, "invalidate", self._backend.fail_open_invalidations)
            return False
        if not removed:
            return False
        self._count_invalidations([key], "invalidate")
        return True

    def invalidate_pattern(self, pattern: str | re.Pattern[str]) -> int:
        search = _validate.pattern(pattern).search
        self._mark_stale(lambda key: search(key) is not None)
        return self._remove(
            (
                [entry for entry in page if search(entry[1])]
                for page in self._backend.scan_entries()
            ),
            "invalidate_pattern",
        )

    def invalidate_prefix(self, prefix: str) -> int:
        _validate.key(prefix, "prefix")
        self._mark_stale(lambda key: key.startswith(prefix))
        total = 0
        try:
            for removed in self._backend.remove_prefix(prefix):
                if removed:
                    total += len(removed)
                    self._count_invalidations(removed, "invalidate_prefix")
        except FAULTS as error:
            self._fault(error, "invalidate_prefix", self._backend.fail_open_invalidations)
        return total

    def clear(self) -> None:
        self._mark_stale(lambda key: True)
        self._remove(self._backend.scan_entries(), "clear")

    def _wipe(self) -> None:
        """Empty the namespace without counting or notifying (for test isolation)."""
        self._mark_stale(lambda key: True)
        for page in self._backend.scan_entries():
            self._backend.remove([name for name, _ in page])

    def _remove(self, pages: Iterable[list[tuple[bytes, str]]], how: str) -> int:
        """UNLINK each page of (redis key, cache key) in one round trip; count what left."""
        seen: set[bytes] = set()
        total = 0
        try:
            for page in pages:
                batch = [(name, key) for name, key in page if name not in seen]
                if not batch:
                    continue
                seen.update(name for name, _ in batch)
                removed = self._backend.remove([name for name, _ in batch])
                if removed:
                    total += len(removed)
                    self._count_invalidations([batch[i][1] for i in removed], how)
        except FAULTS as error:
            self._fault(error, how, self._backend.fail_open_invalidations)
        return total

    def _count_invalidations(self, keys: list[str], how: str) -> None:
        cache = self._cache
        with cache._lock:
            now = self._clock.read()
            cache._invalidations += len(keys)
            cache._removed.record_many(
                (key, Removal(how, now, _UNKNOWN_TTL)) for key in keys[-REMOVAL_MEMORY:]
            )
        if observers.active:
            for key in keys:
                observers.hook.conncache_invalidation(cache=cache, key=key, how=how)

    def _mark_stale(self, matches: Callable[[str], bool]) -> None:
        cache = self._cache
        with cache._lock:
            if cache._flights or cache._async_flights:
                cache._mark_stale(matches)

    def purge_expired(self) -> int:
        now = self._clock.read()
        purged = 0
        for page in self._backend.scan_entries():
            names = [name for name, _ in page]
            raws = cast("list[bytes | None]", self._client.mget(names))
            doomed: list[tuple[bytes, bytes, str, float, float]] = []
            for (name, key), raw in zip(page, raws, strict=True):
                if raw is None:
                    continue
                _, expires_at, ttl = decode(raw)
                if now >= expires_at:
                    doomed.append((name, raw, key, expires_at, ttl))
            deleted = self._backend.remove_if_equal([d[0] for d in doomed], [d[1] for d in doomed])
            if deleted:
                self._count_expirations([doomed[i][2:] for i in deleted])
                purged += len(deleted)
        return purged

    # -- cache-aside -------------------------------------------------------------

    def get_or_set(self, key: str, factory: Callable[[], Any], ttl: Seconds | None = None) -> Any:
        cache = self._cache
        seconds = cache.default_ttl if ttl is None else _validate.seconds(ttl, "ttl")
        _validate.key(key)
        _validate.callable_(factory, "factory")
        # A caller arriving while this process computes the key waits for
        # that call without a round trip of its own.
        with cache._lock:
            running = cache._flights.get(key)
        if running is not None and not running.stale:
            return cache._wait_for_flight(key, running)
        hit, value = self._lookup(key)
        if hit:
            return value
        # Single-flight as in memory (ConnectionCache.get_or_set).
        with cache._lock:
            flight, leader = cache._join_flight(key)
        if not leader:
            return cache._wait_for_flight(key, flight)
        try:
            with self._cross_process_lock(key) as others_value:
                if others_value is not _NOTHING:
                    value = others_value
                else:
                    value = factory()
                    self._finish_flight(key, value, seconds, flight)
        except BaseException as error:
            with cache._lock:
                cache._forget_flight(key, flight)
            flight.fail(error)
            raise
        with cache._lock:
            cache._forget_flight(key, flight)
        flight.resolve(value)
        return value

    def _finish_flight(self, key: str, value: Any, seconds: float, flight: Flight) -> None:
        """Store a factory's value unless the key changed meanwhile, under the cache lock."""
        with self._cache._lock:
            if not flight.stale and self._store(key, value, seconds):
                self._count_set(key)

    async def aget_or_set(
        self, key: str, factory: Callable[[], Awaitable[Any]], ttl: Seconds | None = None
    ) -> Any:
        cache = self._cache
        seconds = cache.default_ttl if ttl is None else _validate.seconds(ttl, "ttl")
        _validate.key(key)
        _validate.callable_(factory, "factory")
        loop = asyncio.get_running_loop()
        # One task per key and loop makes the lookup and, on a miss, calls
        # the factory: callers arriving together share its round trips. The
        # round trips run in the default executor, so a slow or unreachable
        # server holds up the callers of this key, never the event loop.
        with cache._lock:
            task, leader = cache._join_async_flight(
                loop,
                key,
                lambda flight: self._fill(loop, key, factory, seconds, flight),
                count_miss=False,  # _fill counts the leader's hit or miss
            )
        return await cache._await_async_flight(key, task, leader)

    async def _fill(
        self,
        loop: asyncio.AbstractEventLoop,
        key: str,
        factory: Callable[[], Awaitable[Any]],
        seconds: float,
        flight: Flight,
    ) -> Any:
        cache = self._cache
        try:
            hit, value = await asyncio.to_thread(self._lookup, key)
            if hit:
                return value
            with cache._lock:
                cache._count_miss(key)
            async with self._async_cross_process_lock(key) as others_value:
                if others_value is not _NOTHING:
                    return others_value
                value = await factory()
                await asyncio.to_thread(self._finish_flight, key, value, seconds, flight)
                return value
        finally:
            with cache._lock:
                cache._forget_async_flight(loop, key, flight)

    # -- the cross-process lock ------------------------------------------------

    def _cross_process_lock(self, key: str) -> CrossProcessLock:
        return CrossProcessLock(self, key)

    def _async_cross_process_lock(self, key: str) -> AsyncCrossProcessLock:
        return AsyncCrossProcessLock(self, key)

    def _try_lock(self, name: str, token: bytes) -> bool | None:
        """True: ours. False: another process holds it. None: Redis is unreachable."""
        px = max(1, math.ceil(self._backend.lock_timeout * 1000))
        try:
            return bool(self._client.set(name, token, nx=True, px=px))
        except FAULTS as error:
            self._fault(error, "get_or_set", self._backend.fail_open_reads)
            return None

    def _peek_live(self, key: str) -> Any:
        """Another process's live value for ``key`` (no counting), else _NOTHING."""
        try:
            raw = self._read(key)
        except FAULTS as error:
            self._fault(error, "get_or_set", self._backend.fail_open_reads)
            return _NOTHING
        if raw is None:
            return _NOTHING
        payload, expires_at, _ = decode(raw)
        if self._clock.read() >= expires_at:
            return _NOTHING
        return self._serializer.loads(payload)

    def _release(self, key: str, token: bytes) -> None:
        try:
            self._backend.release_lock(key, token)
        except FAULTS as error:
            # The lock expires by itself after lock_timeout.
            self._fault(error, "get_or_set", True)
