"""Cache-aside: ``get_or_set`` and ``aget_or_set``, with single-flight.

One caller of a missing key (the leader) calls the factory; callers of the
same key arriving meanwhile wait for its result instead of calling it again:
threads on a ``Flight``, coroutines of one event loop on an ``AsyncFlight``.
A caller that finds a running flight waits without a store round trip.

The stale-flight rule: a key written or invalidated while its factory runs
marks the flight stale (``CacheCore._mark_stale``, before the store
changes), and the leader stores with ``put_if_unchanged``, which refuses a
stale flight's value as one step against every write of the store; a shared
store also refuses it when another process changed the key after the
leader's lookup (the stamp). The waiters still get the value.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from types import CoroutineType
from typing import TYPE_CHECKING, Any, TypeVar

from . import _validate
from ._codecs import Codec, codec_for
from ._core import MISSING, CacheCore
from ._flight import AsyncFlight, Flight
from ._store import CorruptEntry, Entry, Stamp
from ._validate import Seconds

if TYPE_CHECKING:
    import asyncio

V = TypeVar("V")
T = TypeVar("T")

# How many landed fills a cache remembers (see CacheAside._join).
_LANDINGS = 64

TTL = Seconds | Callable[[Any], Seconds] | None


class Fill:
    """What one get_or_set call asked for its value: ttl (or how to compute it from
    the value), tags, codec, and whether to keep a value at all (``cache_if``)."""

    __slots__ = ("ttl", "tags", "codec", "cache_if")

    def __init__(
        self,
        ttl: float | Callable[[Any], Seconds],
        tags: tuple[str, ...],
        codec: Codec | None,
        cache_if: Callable[[Any], object] | None,
    ) -> None:
        self.ttl = ttl
        self.tags = tags
        self.codec = codec
        self.cache_if = cache_if

    def seconds(self, value: Any) -> float:
        if callable(self.ttl):
            return _validate.seconds(self.ttl(value), "ttl (returned by the ttl callable)")
        return self.ttl

    def keep(self, value: Any) -> bool:
        return self.cache_if is None or bool(self.cache_if(value))


class CacheAside(CacheCore[V]):
    """``get_or_set`` and ``aget_or_set`` of ``ConnectionCache``."""

    def get_or_set(
        self,
        key: str,
        factory: Callable[[], T],
        ttl: TTL = None,
        *,
        tags: Iterable[str] = (),
        value_type: Any = None,
        cache_if: Callable[[T], object] | None = None,
    ) -> T:
        """The live value, or ``factory()`` called once, stored and returned.

        Concurrent callers of one key share one factory call; a factory that
        raises stores nothing, and every waiting caller gets its exception.
        ``ttl`` may be a callable of the value; ``tags`` label the stored entry;
        ``value_type`` as in ``get``; ``cache_if(value)`` false returns the
        value without storing it.
        """
        if type(key) is not str or not key.isascii():
            _validate.key(key)
        _validate.callable_(factory, "factory")
        if ttl is not None or tags or cache_if is not None:
            self._fill_for(ttl, tags, None, cache_if)  # bad arguments fail on hits too
        codec = self._codec if value_type is None else codec_for(value_type)
        flight = self._flights.get(key)
        reachable = True
        if flight is None or flight.stale:
            # The hit path: a plain read (on Redis a GET, not the stamped lookup).
            try:
                entry = self._store.lookup(key, codec)
            except Exception as error:
                entry = self._read_failed(error, key)
                reachable = isinstance(error, CorruptEntry)
            value = self._answer(key, entry)
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
            self._drop_expired(self._expired(entry))
        fill = self._fill_for(ttl, tags, codec, cache_if)
        return self._fill_or_wait(key, factory, fill, reachable)  # type: ignore[no-any-return]

    def _fill_for(
        self,
        ttl: TTL,
        tags: Iterable[str],
        codec: Codec | None,
        cache_if: Callable[[Any], object] | None,
    ) -> Fill:
        """A miss's ``Fill``, its arguments checked before any factory runs."""
        if ttl is None:
            seconds: float | Callable[[Any], Seconds] = self._default_ttl
        elif callable(ttl) and not isinstance(ttl, type):
            seconds = ttl
        else:
            seconds = _validate.seconds(ttl, "ttl")
        if cache_if is not None:
            _validate.callable_(cache_if, "cache_if")
        return Fill(seconds, _validate.tags(tags) if tags else (), codec, cache_if)

    def _fill_or_wait(
        self, key: str, factory: Callable[[], Any], fill: Fill, reachable: bool
    ) -> Any:
        """After a miss: wait for the running flight, or lead one (see ``_join``).

        Not ``reachable``: the read before failed, so the stamped lookup would
        too (and cost a second timeout); the caller leads without a stamp, and
        so stores nothing.
        """
        while True:
            flight = self._flights.get(key)
            if flight is not None and not flight.stale:
                return self._wait_for(key, flight)
            fills = self._fills
            try:
                if not reachable:
                    raise _Unreached
                entry, stamp = self._store.lookup_for_fill(key, fill.codec)
            except _Unreached:
                entry, stamp, reachable = None, None, True
            except Exception as error:
                entry, stamp = self._read_failed(error, key), None
            value = self._answer(key, entry)
            if value is not MISSING:
                return value
            self._drop_expired(self._expired(entry))
            flight, leader = self._join(key, fills, fill.tags)
            if flight is not None:
                break
        if not leader:
            return self._wait_for(key, flight)
        try:
            value = self._fill(key, factory, fill, stamp, flight)
        except BaseException as error:
            self._land(flight, error=error)
            raise
        self._land(flight, value)
        return value

    def _join(self, key: str, fills: int, tags: tuple[str, ...]) -> tuple[Flight | None, bool]:
        """After a miss: (the running flight, False), (a new flight this caller leads,
        True, one miss counted), or (None, False) to look again.

        ``fills`` is ``_fills`` before this caller's lookup. A fill of the key that
        landed since ran while the caller looked: its outcome is the caller's too
        (as a settled flight), as if the caller had found it running.
        """
        with self._lock:
            flight = self._flights.get(key)
            if flight is not None and not flight.stale:
                return flight, False
            if flight is None and self._fills != fills:
                landed = self._landing(key, fills)
                if landed is not None:
                    done = Flight(key)
                    done.settle(*landed)
                    return done, False
                if self._fills - fills >= _LANDINGS:
                    return None, False  # too much landed to tell: look again
            flight = self._flights[key] = Flight(key, tags)
            self._count_miss(key)
            return flight, True

    def _landing(self, key: str, fills: int) -> tuple[Any, BaseException | None] | None:
        """Under the lock: the outcome of a fill of ``key`` that landed after ``fills``."""
        landed = self._landed.get(key)
        if landed is None or landed[0] <= fills:
            return None
        return landed[1], landed[2]

    def _wait_for(self, key: str, flight: Flight) -> Any:
        """A waiter's answer: the leader's value (a hit) or its exception (a miss)."""
        try:
            value = flight.result()
        except BaseException:
            self._count_miss(key)  # served no value: a miss
            raise
        self._count_hit(key, value=value)
        return value

    def _fill(
        self, key: str, factory: Callable[[], Any], fill: Fill, stamp: Stamp | None, flight: Flight
    ) -> Any:
        """The leader's part: the factory's value, stored unless stale."""
        other, token = self._store.claim_fill(key, self._clock.read, fill.codec)
        try:
            if other is not None:
                return other.value  # another process stored it while this one waited
            value = factory()
            if isinstance(value, Awaitable):
                _close(value)
                raise TypeError(
                    f"the factory for key {_validate.shown(key)} returned an awaitable "
                    f"({type(value).__name__}), which get_or_set would cache unawaited: "
                    "use aget_or_set for async factories"
                )
            if fill.keep(value):
                entry, now = self._new_entry(key, value, fill.seconds(value), tags=fill.tags)
                try:
                    stored, displaced = self._store.put_if_unchanged(
                        entry, now, stamp, flight.fresh, fill.codec
                    )
                except Exception as error:
                    self._fill_failed(error, key)
                    return value
                self._stored(entry, stored, displaced, now)
            return value
        finally:
            if token is not None:
                self._store.release_fill(key, token)

    def _stored(self, entry: Entry, stored: bool, displaced: Any, now: float) -> None:
        if stored:
            self._fill_stored()
            self._count_set(entry.key, displaced, now, entry.ttl, entry.value)

    def _land(self, flight: Flight | AsyncFlight, value: Any = None, error: Any = None) -> None:
        """The leader is done: later callers look up again, waiters get the outcome."""
        with self._lock:
            self._fills += 1
            landed = self._landed
            landed.pop(flight.key, None)
            if error is None or isinstance(error, Exception):
                # Not a cancellation: a caller arriving now should not inherit one.
                landed[flight.key] = (self._fills, value, error)
                if len(landed) > _LANDINGS:
                    del landed[next(iter(landed))]
            if isinstance(flight, Flight):
                if self._flights.get(flight.key) is flight:
                    del self._flights[flight.key]
            else:
                self._async_flights.discard(flight)
        flight.settle(value, error)

    # -- async -------------------------------------------------------------------------

    async def aget_or_set(
        self,
        key: str,
        factory: Callable[[], Awaitable[T]],
        ttl: TTL = None,
        *,
        tags: Iterable[str] = (),
        value_type: Any = None,
        cache_if: Callable[[T], object] | None = None,
    ) -> T:
        """``get_or_set`` for an async factory: concurrent coroutines share one await.

        The factory runs in its own task, so cancelling one waiting caller
        does not cancel the computation the others wait for.
        """
        _validate.key(key)
        _validate.callable_(factory, "factory")
        if ttl is not None or tags or cache_if is not None:
            self._fill_for(ttl, tags, None, cache_if)  # bad arguments fail on hits too
        codec = self._codec if value_type is None else codec_for(value_type)
        from asyncio import get_running_loop  # imported on first use: see __init__

        loop = get_running_loop()
        flight = self._async_flights.running(loop, key)
        reachable = True
        if flight is None or flight.stale:
            try:
                entry = await self._store.alookup(key, codec)
            except Exception as error:
                entry = self._read_failed(error, key)
                reachable = isinstance(error, CorruptEntry)
            value = self._answer(key, entry)
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
            await self._adrop_expired(self._expired(entry))
        fill = self._fill_for(ttl, tags, codec, cache_if)
        return await self._afill_or_wait(loop, key, factory, fill, reachable)  # type: ignore[no-any-return]

    async def _afill_or_wait(
        self,
        loop: asyncio.AbstractEventLoop,
        key: str,
        factory: Callable[[], Awaitable[Any]],
        fill: Fill,
        reachable: bool,
    ) -> Any:
        while True:
            flight = self._async_flights.running(loop, key)
            if flight is not None and not flight.stale:
                return await self._await_flight(key, flight, leader=False)
            fills = self._fills
            try:
                if not reachable:
                    raise _Unreached
                entry, stamp = await self._store.alookup_for_fill(key, fill.codec)
            except _Unreached:
                entry, stamp, reachable = None, None, True
            except Exception as error:
                entry, stamp = self._read_failed(error, key), None
            value = self._answer(key, entry)
            if value is not MISSING:
                return value
            await self._adrop_expired(self._expired(entry))
            flight, leader = self._ajoin(loop, key, fills, fill.tags)
            if flight is not None:
                break
        if leader:
            self._launch(loop, key, factory, fill, stamp, flight)
        return await self._await_flight(key, flight, leader)

    def _ajoin(
        self, loop: asyncio.AbstractEventLoop, key: str, fills: int, tags: tuple[str, ...]
    ) -> tuple[AsyncFlight | None, bool]:
        """``_join`` for coroutines; the leader counts its miss once its factory
        gave an awaitable (see ``_launch``)."""
        with self._lock:
            flight = self._async_flights.running(loop, key)
            if flight is not None and not flight.stale:
                return flight, False
            if flight is None and self._fills != fills:
                landed = self._landing(key, fills)
                if landed is not None:
                    done = AsyncFlight(key, loop)
                    done.settle(*landed)
                    return done, False
                if self._fills - fills >= _LANDINGS:
                    return None, False
            flight = AsyncFlight(key, loop, tags)
            self._async_flights.add(loop, flight)
            return flight, True

    def _launch(
        self,
        loop: asyncio.AbstractEventLoop,
        key: str,
        factory: Callable[[], Awaitable[Any]],
        fill: Fill,
        stamp: Stamp | None,
        flight: AsyncFlight,
    ) -> None:
        """Call the factory and await what it returns in a task of its own."""
        try:
            awaitable: object = factory()
        except BaseException as error:
            self._count_miss(key)
            self._land(flight, error=error)
            raise
        if not isinstance(awaitable, Awaitable):
            wrong = TypeError(
                f"the factory for key {_validate.shown(key)} returned "
                f"{_validate.shown(awaitable)} ({type(awaitable).__name__}), not an "
                "awaitable: aget_or_set needs an async factory; use get_or_set for sync ones"
            )
            self._land(flight, error=wrong)
            raise wrong
        self._count_miss(key)
        flight.task = loop.create_task(self._afill(key, awaitable, fill, stamp, flight))

    async def _await_flight(self, key: str, flight: AsyncFlight, leader: bool) -> Any:
        """The flight's value; a waiter counts a hit, or a miss when it gets an exception."""
        from asyncio import current_task, shield

        if flight.task is not None and flight.task is current_task():
            raise RecursionError(
                f"aget_or_set({key!r}) was awaited from its own factory; "
                "the task would wait for itself forever"
            )
        try:
            value = await shield(flight.future)
        except BaseException:
            if not leader:
                self._count_miss(key)  # served no value: a miss
            raise
        if not leader:
            self._count_hit(key, value=value)
        return value

    async def _afill(
        self,
        key: str,
        awaitable: Awaitable[Any],
        fill: Fill,
        stamp: Stamp | None,
        flight: AsyncFlight,
    ) -> None:
        """The leader's task: await the factory, store unless stale, settle the flight."""
        try:
            other, token = await self._store.aclaim_fill(key, self._clock.read, fill.codec)
        except BaseException as error:
            _close(awaitable)
            self._land(flight, error=error)
            return
        try:
            if other is not None:
                _close(awaitable)
                value = other.value
            else:
                value = await awaitable
                if fill.keep(value):
                    await self._astore_fill(key, value, fill, stamp, flight)
        except BaseException as error:
            self._land(flight, error=error)
            if not isinstance(error, Exception):
                raise  # cancellation, KeyboardInterrupt: the task ends as asked
            return
        finally:
            if token is not None:
                await self._store.arelease_fill(key, token)
        self._land(flight, value)

    async def _astore_fill(
        self, key: str, value: Any, fill: Fill, stamp: Stamp | None, flight: AsyncFlight
    ) -> None:
        entry, now = self._new_entry(key, value, fill.seconds(value), tags=fill.tags)
        try:
            stored, displaced = await self._store.aput_if_unchanged(
                entry, now, stamp, flight.fresh, fill.codec
            )
        except Exception as error:
            self._fill_failed(error, key)
            return
        self._stored(entry, stored, displaced, now)


class _Unreached(Exception):
    """The read before failed: skip the stamped lookup (see ``_fill_or_wait``)."""


def _close(awaitable: object) -> None:
    """Close a coroutine that will never be awaited, so that no warning says so."""
    if isinstance(awaitable, CoroutineType):
        awaitable.close()
