"""ConnectionCache: a thread-safe in-memory TTL cache with prefix and regex invalidation."""

from __future__ import annotations

import asyncio
import heapq
import math
import re
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from itertools import islice
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from . import _validate
from ._clock import Clock, DefaultClock, FixedClock, default_clock
from ._flight import Flight
from ._hooks import observers
from ._keyindex import LOAD, SortedKeys
from ._registry import track
from ._removals import REMOVAL_MEMORY, Removal, RemovalLog
from ._stats import CacheStats
from ._validate import Seconds

if TYPE_CHECKING:
    from ._backend import Backend, BoundBackend

V = TypeVar("V")
D = TypeVar("D")

DEFAULT_TTL = 300.0


class _Entry:
    """One stored value. Never mutated: a set stores a new entry.

    Entries order by expiry so that bounded caches can keep them in a heap
    and find expired ones first without scanning.
    """

    __slots__ = ("key", "value", "expires_at", "ttl")

    def __init__(self, key: str, value: Any, expires_at: float, ttl: float) -> None:
        self.key = key
        self.value = value
        self.expires_at = expires_at
        self.ttl = ttl

    def __lt__(self, other: _Entry) -> bool:
        return self.expires_at < other.expires_at


def _consume_exception(task: asyncio.Task[Any]) -> None:
    # Every caller may have been cancelled while the factory ran; fetch the
    # exception so asyncio does not log it as never retrieved.
    if not task.cancelled():
        task.exception()


class ConnectionCache(Generic[V]):
    """A TTL cache for the results of slow calls, keyed by ``str``.

    ``default_ttl`` is in seconds (or a ``timedelta``) and must be > 0;
    ``math.inf`` means entries never expire. ``clock`` is any zero-argument
    callable returning seconds; with None the cache reads the process default
    clock (``time.monotonic`` unless ``frozen_clock`` redirected it).
    ``max_entries`` bounds the cache: a new key past it removes expired
    entries first, then the least recently used live ones.
    """

    def __init__(
        self,
        default_ttl: Seconds = DEFAULT_TTL,
        *,
        clock: Clock | None = None,
        max_entries: int | None = None,
    ) -> None:
        self._default_ttl = _validate.seconds(default_ttl, "default_ttl")
        self._max_entries = _validate.max_entries(max_entries)
        if clock is not None:
            _validate.callable_(clock, "clock")
        self._clock: DefaultClock | FixedClock = (
            default_clock if clock is None else FixedClock(clock)
        )
        self._lock = threading.RLock()
        # Bounded caches keep recency order (OrderedDict.move_to_end on hits)
        # and an expiry heap; unbounded ones need neither and skip the cost.
        self._data: dict[str, _Entry] = OrderedDict() if self._max_entries is not None else {}
        self._heap: list[_Entry] | None = [] if self._max_entries is not None else None
        self._index = SortedKeys()
        self._removed = RemovalLog(REMOVAL_MEMORY)
        self._flights: dict[str, Flight] = {}
        self._async_flights: dict[
            tuple[asyncio.AbstractEventLoop, str], tuple[asyncio.Task[Any], Flight]
        ] = {}
        self._hits = self._misses = self._sets = 0
        self._invalidations = self._expirations = self._evictions = 0
        self._backend: BoundBackend | None = None  # see use_backend
        track(self)

    # -- introspection -----------------------------------------------------

    @property
    def default_ttl(self) -> float:
        return self._default_ttl

    @property
    def max_entries(self) -> int | None:
        return self._max_entries

    @property
    def clock(self) -> Clock:
        """The callable this cache reads its time from."""
        if self._backend is not None:
            return self._backend.clock()
        return self._clock.read if isinstance(self._clock, FixedClock) else default_clock

    def now(self) -> float:
        """The cache's current clock reading, in seconds."""
        return self._clock.read()

    def __repr__(self) -> str:
        if self._backend is not None:
            return self._backend.describe()
        return (
            f"<ConnectionCache entries={len(self._data)} default_ttl={self._default_ttl!r}"
            f" max_entries={self._max_entries!r}>"
        )

    # -- reads -------------------------------------------------------------

    @overload
    def get(self, key: str) -> V | None: ...
    @overload
    def get(self, key: str, default: D) -> V | D: ...

    def get(self, key: str, default: Any = None) -> Any:
        """The live value stored under ``key``, else ``default``."""
        # The hottest path. Explicit acquire/release instead of ``with``:
        # measured on CPython 3.11, ``with self._lock`` made a hit about 40%
        # slower (python -m benchmarks core).
        lock = self._lock
        lock.acquire()
        try:
            entry = self._data.get(key) if type(key) is str else self._checked_lookup(key)
            if entry is not None:
                if self._clock.read() < entry.expires_at:
                    self._hits += 1
                    if self._heap is not None:
                        self._data.move_to_end(key)  # type: ignore[attr-defined]
                    if observers.active:
                        observers.hook.conncache_hit(cache=self, key=key)
                    return entry.value
                self._expire(entry)
            self._misses += 1
            if observers.active:
                observers.hook.conncache_miss(cache=self, key=key)
            return default
        finally:
            lock.release()

    def _checked_lookup(self, key: object) -> _Entry | None:
        return self._data.get(_validate.key(key))

    def __contains__(self, key: object) -> bool:
        """Live check: stored and not expired. Peeks: no counter, no recency."""
        if self._backend is not None:
            return self._backend.contains(key)
        with self._lock:
            entry = self._data.get(_validate.key(key))
            return entry is not None and self._clock.read() < entry.expires_at

    def has(self, key: str) -> bool:
        """Stored, regardless of expiration (as in the seed). Peeks."""
        with self._lock:
            return _validate.key(key) in self._data

    def size(self) -> int:
        """Stored entries, expired ones not yet removed included."""
        return len(self._data)

    def __len__(self) -> int:
        if self._backend is not None:
            return self._backend.size()
        return len(self._data)

    def keys(self) -> list[str]:
        """The stored keys, as ``size()`` counts them, in storage order."""
        with self._lock:
            return list(self._data)

    def ttl_remaining(self, key: str) -> float | None:
        """Seconds left for a live entry, ``math.inf`` if it never expires, else None."""
        with self._lock:
            entry = self._data.get(_validate.key(key))
            if entry is None:
                return None
            left = entry.expires_at - self._clock.read()
            return left if left > 0 else None

    @property
    def stats(self) -> CacheStats:
        if self._backend is not None:
            return self._backend.stats()
        return self._counters()

    def reset_stats(self) -> None:
        """Zero the counters and forget which keys were removed."""
        with self._lock:
            self._zero_counters()

    def _counters(self, errors: int = 0) -> CacheStats:
        with self._lock:
            return CacheStats(
                hits=self._hits,
                misses=self._misses,
                sets=self._sets,
                invalidations=self._invalidations,
                expirations=self._expirations,
                evictions=self._evictions,
                errors=errors,
            )

    def _zero_counters(self) -> None:
        """Under the lock: what reset_stats does (backends add their own counters)."""
        self._hits = self._misses = self._sets = 0
        self._invalidations = self._expirations = self._evictions = 0
        if self._removed:
            self._removed.clear()

    # -- storage backend ---------------------------------------------------
    # A backend installs its own methods on this instance (see _backend.py),
    # so the in-memory methods pay nothing for it; only the properties and
    # dunder methods, which Python looks up on the type, check _backend.

    @property
    def backend(self) -> Backend | None:
        """The storage backend (e.g. a ``RedisBackend``), or None in memory."""
        return None if self._backend is None else self._backend.backend

    def use_backend(self, backend: Backend | None) -> None:
        """Keep this cache's entries in ``backend`` from now on; None: in memory again.

        The one call production code makes at start-up to move the singleton,
        and with it every call site, to Redis::

            connection_cache.use_backend(RedisBackend.from_url(url, namespace="myapp"))

        Entries held in memory are dropped on every switch (uncounted), so
        none resurfaces later; counters carry on.
        """
        with self._lock:
            bound = None if backend is None else backend.bind(self)
            if self._backend is not None:
                for name in self._backend.methods():
                    vars(self).pop(name, None)
            if self._flights or self._async_flights:
                self._mark_stale(lambda key: True)
            self._drop_all()
            self._backend = bound
            if bound is not None:
                vars(self).update(bound.methods())

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        namespace: str,
        default_ttl: Seconds = DEFAULT_TTL,
        clock: Clock | None = None,
        **options: Any,
    ) -> ConnectionCache[Any]:
        """A cache on the Redis server at ``url``, keys under ``{namespace}:``.

        ``options`` go to ``RedisBackend.from_url``. Needs the ``redis`` extra.
        """
        from ._redis import RedisBackend

        cache: ConnectionCache[Any] = cls(default_ttl, clock=clock)
        cache.use_backend(RedisBackend.from_url(url, namespace=namespace, **options))
        return cache

    # -- writes ------------------------------------------------------------

    def set(self, key: str, data: V, ttl: Seconds | None = None) -> None:
        """Store ``data`` under ``key`` for ``ttl`` seconds (default: the cache's)."""
        seconds = self._default_ttl if ttl is None else _validate.seconds(ttl, "ttl")
        if type(key) is not str:
            _validate.key(key)
        lock = self._lock  # acquire/release, not ``with``: see get()
        lock.acquire()
        try:
            self._store(key, data, seconds)
            if self._flights or self._async_flights:
                self._mark_stale(key.__eq__)
        finally:
            lock.release()

    def _store(self, key: str, value: Any, seconds: float) -> None:
        """Store under the lock and count one set."""
        data = self._data
        now = self._clock.read()
        entry = _Entry(key, value, now + seconds, seconds)
        if key in data:
            data[key] = entry
            if self._heap is not None:
                data.move_to_end(key)  # type: ignore[attr-defined]
        else:
            if self._max_entries is not None and len(data) >= self._max_entries:
                self._make_room(now)
            data[key] = entry
            self._index.add(key)
            if self._removed:
                self._removed.forget(key)
        if self._heap is not None and seconds != math.inf:
            self._push_expiry(entry)
        self._sets += 1
        if observers.active:
            observers.hook.conncache_set(cache=self, key=key)

    def _push_expiry(self, entry: _Entry) -> None:
        heap = self._heap
        assert heap is not None
        heapq.heappush(heap, entry)
        # Replaced and removed entries stay in the heap until popped; rebuild
        # once they outnumber the live ones so the heap stays O(entries).
        if len(heap) > 2 * len(self._data) + LOAD:
            live = [e for e in self._data.values() if e.expires_at != math.inf]
            heapq.heapify(live)
            self._heap = live

    def _make_room(self, now: float) -> None:
        """Free one slot: every expired entry first, else the least recently used."""
        data = self._data
        heap = self._heap
        assert heap is not None
        while heap and heap[0].expires_at <= now:
            candidate = heapq.heappop(heap)
            if data.get(candidate.key) is candidate:
                self._expire(candidate)
        if len(data) >= self._max_entries:  # type: ignore[operator]
            key, entry = data.popitem(last=False)  # type: ignore[call-arg]
            self._index.discard(key)
            self._evictions += 1
            self._removed.record(key, Removal("evicted", now, entry.ttl))
            if observers.active:
                observers.hook.conncache_eviction(cache=self, key=key)

    def _expire(self, entry: _Entry) -> None:
        """Remove an expired entry under the lock and count one expiration."""
        del self._data[entry.key]
        self._index.discard(entry.key)
        self._expirations += 1
        self._removed.record(entry.key, Removal("expired", entry.expires_at, entry.ttl))
        if observers.active:
            observers.hook.conncache_expiration(cache=self, key=entry.key)

    # -- invalidation ------------------------------------------------------

    def invalidate(self, key: str) -> bool:
        """Remove ``key``; True if an entry was stored."""
        _validate.key(key)
        with self._lock:
            if self._flights or self._async_flights:
                self._mark_stale(key.__eq__)
            if key not in self._data:
                return False
            self._remove_many([key], "invalidate")
            return True

    def invalidate_pattern(self, pattern: str | re.Pattern[str]) -> int:
        """Remove every key where ``pattern.search(key)`` matches; return how many.

        Unanchored patterns match anywhere, like JavaScript's ``RegExp.test``.
        """
        search = _validate.pattern(pattern).search
        with self._lock:
            doomed = [key for key in self._data if search(key)]
            if self._flights or self._async_flights:
                self._mark_stale(lambda key: search(key) is not None)
            self._remove_many(doomed, "invalidate_pattern")
            return len(doomed)

    def invalidate_prefix(self, prefix: str) -> int:
        """Remove every key that starts with the literal ``prefix``; return how many.

        Uses the sorted key index: the cost grows with the keys removed, not
        with the size of the cache.
        """
        _validate.key(prefix, "prefix")
        with self._lock:
            doomed = self._index.pop_prefix(prefix)
            if self._flights or self._async_flights:
                self._mark_stale(lambda key: key.startswith(prefix))
            self._remove_many(doomed, "invalidate_prefix", indexed=False)
            return len(doomed)

    def clear(self) -> None:
        """Remove every entry; each one counts as an invalidation."""
        with self._lock:
            if self._flights or self._async_flights:
                self._mark_stale(lambda key: True)
            now = self._clock.read()
            data = self._data
            self._invalidations += len(data)
            recent = islice(reversed(data.values()), REMOVAL_MEMORY)
            self._removed.record_many(
                (e.key, Removal("clear", now, e.ttl)) for e in reversed(list(recent))
            )
            if observers.active:
                for key in list(data):
                    observers.hook.conncache_invalidation(cache=self, key=key, how="clear")
            self._drop_all()

    def _remove_many(self, keys: list[str], how: str, *, indexed: bool = True) -> None:
        """Remove stored ``keys`` under the lock, counting each as an invalidation.

        ``indexed=False``: the caller already took the keys out of the index.
        """
        if not keys:
            return
        data = self._data
        now = self._clock.read()
        entries = [data.pop(key) for key in keys]
        if indexed:
            self._unindex(keys)
        self._invalidations += len(keys)
        self._removed.record_many(
            (e.key, Removal(how, now, e.ttl)) for e in entries[-REMOVAL_MEMORY:]
        )
        if observers.active:
            for key in keys:
                observers.hook.conncache_invalidation(cache=self, key=key, how=how)

    def _unindex(self, keys: list[str]) -> None:
        """Drop keys that just left ``_data`` from the prefix index."""
        index = self._index
        # Past about 1/16 of the index, one linear pass beats a binary
        # search and a list deletion per key.
        if len(keys) * 16 > len(index):
            index.retain(self._data)
        else:
            for key in keys:
                index.discard(key)

    def purge_expired(self) -> int:
        """Remove every expired entry now; return how many."""
        with self._lock:
            now = self._clock.read()
            data = self._data
            expired = [e for e in data.values() if now >= e.expires_at]
            for entry in expired:
                del data[entry.key]
            self._unindex([e.key for e in expired])
            self._expirations += len(expired)
            self._removed.record_many(
                (e.key, Removal("expired", e.expires_at, e.ttl)) for e in expired[-REMOVAL_MEMORY:]
            )
            if observers.active:
                for entry in expired:
                    observers.hook.conncache_expiration(cache=self, key=entry.key)
            return len(expired)

    def _drop_all(self) -> None:
        self._data.clear()
        self._index.clear()
        if self._heap is not None:
            self._heap.clear()

    def _wipe(self) -> None:
        """Empty the cache without counting or notifying (for test isolation)."""
        with self._lock:
            if self._flights or self._async_flights:
                self._mark_stale(lambda key: True)
            if self._data:
                self._drop_all()

    def _start_test(self, wipe: bool) -> None:
        """Before each test: zero the stats and, if ``wipe``, empty the cache.

        The plugin calls this for every cache before every test, so an
        untouched cache costs one lock and a few truth tests.
        """
        with self._lock:
            if wipe:
                self._wipe()
            self._zero_counters()

    def _mark_stale(self, matches: Callable[[str], bool]) -> None:
        """Keep running factories of matching keys from storing what they return."""
        for key, flight in self._flights.items():
            if matches(key):
                flight.stale = True
        for (_, key), (_, flight) in self._async_flights.items():
            if matches(key):
                flight.stale = True

    # -- cache-aside -------------------------------------------------------

    def get_or_set(self, key: str, factory: Callable[[], V], ttl: Seconds | None = None) -> V:
        """The live value, or ``factory()`` called once, stored and returned.

        Concurrent callers of one key share one factory call; a factory that
        raises stores nothing, and every waiting caller gets its exception.
        """
        seconds = self._default_ttl if ttl is None else _validate.seconds(ttl, "ttl")
        if type(key) is not str:  # inline, so a hit pays no extra call
            _validate.key(key)
        _validate.callable_(factory, "factory")
        lock = self._lock  # acquire/release, not ``with``: see get()
        lock.acquire()
        try:
            hit, value = self._lookup(key)
            if hit:
                return value  # type: ignore[no-any-return]
            flight, leader = self._join_flight(key)
        finally:
            lock.release()
        if not leader:
            return self._wait_for_flight(key, flight)  # type: ignore[no-any-return]
        try:
            value = factory()
        except BaseException as error:
            with self._lock:
                self._forget_flight(key, flight)
            flight.fail(error)
            raise
        with self._lock:
            self._forget_flight(key, flight)
            if not flight.stale:
                self._store(key, value, seconds)
        flight.resolve(value)
        return value

    def _join_flight(self, key: str) -> tuple[Flight, bool]:
        """Under the lock: the flight computing ``key``, and whether this caller leads it.

        A stale flight predates a write or invalidation of its key: a caller
        arriving after that change starts a fresh call instead, counted as
        the miss. The Redis backend shares this.
        """
        flight = self._flights.get(key)
        if flight is not None and not flight.stale:
            return flight, False
        flight = self._flights[key] = Flight(key)
        self._count_miss(key)
        return flight, True

    def _wait_for_flight(self, key: str, flight: Flight) -> Any:
        """A waiter's answer: the leader's value (a hit) or its exception (a miss)."""
        try:
            value = flight.result()
        except BaseException:
            with self._lock:
                self._count_miss(key)  # served no value: a miss
            raise
        self._count_hit(key)
        return value

    def _forget_flight(self, key: str, flight: Flight) -> None:
        # A later caller may have replaced a stale flight: leave that one.
        if self._flights.get(key) is flight:
            del self._flights[key]

    async def aget_or_set(
        self, key: str, factory: Callable[[], Awaitable[V]], ttl: Seconds | None = None
    ) -> V:
        """``get_or_set`` for an async factory: concurrent coroutines share one await.

        The factory runs in its own task, so cancelling one waiting caller
        does not cancel the computation the others wait for.
        """
        seconds = self._default_ttl if ttl is None else _validate.seconds(ttl, "ttl")
        _validate.key(key)
        _validate.callable_(factory, "factory")
        loop = asyncio.get_running_loop()
        with self._lock:
            hit, value = self._lookup(key)
            if hit:
                return value  # type: ignore[no-any-return]
            task, leader = self._join_async_flight(
                loop, key, lambda flight: self._fill(loop, key, factory, seconds, flight)
            )
        return await self._await_async_flight(key, task, leader)  # type: ignore[no-any-return]

    def _join_async_flight(
        self,
        loop: asyncio.AbstractEventLoop,
        key: str,
        fill: Callable[[Flight], Coroutine[Any, Any, Any]],
        count_miss: bool = True,
    ) -> tuple[asyncio.Task[Any], bool]:
        """Under the lock: the task computing ``key`` on ``loop``, and whether this caller leads it.

        A stale flight predates a write or invalidation of its key, so the
        caller starts a fresh one with ``fill(flight)``, counted as the miss
        unless ``count_miss`` is off (the Redis backend looks up inside
        ``fill`` and counts there).
        The task survives a cancelled caller (``shield``), so other waiters
        still get its value. The Redis backend shares this.
        """
        running = self._async_flights.get((loop, key))
        if running is not None and not running[1].stale:
            if running[0] is asyncio.current_task():
                raise RecursionError(
                    f"aget_or_set({key!r}) was awaited from its own factory; "
                    "the task would wait for itself forever"
                )
            return running[0], False
        flight = Flight(key)
        task = loop.create_task(fill(flight))
        task.add_done_callback(_consume_exception)
        self._async_flights[(loop, key)] = (task, flight)
        if count_miss:
            self._count_miss(key)
        return task, True

    async def _await_async_flight(self, key: str, task: asyncio.Task[Any], leader: bool) -> Any:
        """The flight's value; a waiter counts a hit, or a miss when it gets an exception."""
        try:
            value = await asyncio.shield(task)
        except BaseException:
            if not leader:
                with self._lock:
                    self._count_miss(key)  # served no value: a miss
            raise
        if not leader:
            self._count_hit(key)
        return value

    async def _fill(
        self,
        loop: asyncio.AbstractEventLoop,
        key: str,
        factory: Callable[[], Awaitable[V]],
        seconds: float,
        flight: Flight,
    ) -> V:
        try:
            value = await factory()
        except BaseException:
            with self._lock:
                self._forget_async_flight(loop, key, flight)
            raise
        with self._lock:
            self._forget_async_flight(loop, key, flight)
            if not flight.stale:
                self._store(key, value, seconds)
        return value

    def _forget_async_flight(
        self, loop: asyncio.AbstractEventLoop, key: str, flight: Flight
    ) -> None:
        running = self._async_flights.get((loop, key))
        if running is not None and running[1] is flight:
            del self._async_flights[(loop, key)]

    def _lookup(self, key: str) -> tuple[bool, Any]:
        """Under the lock: (True, value) and one hit for a live entry, else (False, None)."""
        entry = self._data.get(key)
        if entry is not None:
            if self._clock.read() < entry.expires_at:
                self._hits += 1
                if self._heap is not None:
                    self._data.move_to_end(key)  # type: ignore[attr-defined]
                if observers.active:
                    observers.hook.conncache_hit(cache=self, key=key)
                return True, entry.value
            self._expire(entry)
        return False, None

    def _count_miss(self, key: str) -> None:
        self._misses += 1
        if observers.active:
            observers.hook.conncache_miss(cache=self, key=key)

    def _count_hit(self, key: str) -> None:
        with self._lock:
            self._hits += 1
            if observers.active:
                observers.hook.conncache_hit(cache=self, key=key)

    # -- peeking, for the assertion helpers ---------------------------------

    def _peek(self, key: str) -> tuple[_Entry | None, Removal | None, float]:
        """(stored entry, last removal record, now) without touching any counter."""
        with self._lock:
            return self._data.get(key), self._removed.get(key), self._clock.read()

    def _similar_candidates(self) -> tuple[frozenset[str], dict[str, Removal], float]:
        """(stored keys, remembered removals, now) for the helpers' "similar keys" hint."""
        with self._lock:
            return frozenset(self._data), self._removed.snapshot(), self._clock.read()
