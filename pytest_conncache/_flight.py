"""Single-flight bookkeeping: one factory call per missing key, shared by its waiters.

``Flight`` is one ``get_or_set`` factory call that other threads wait on;
``AsyncFlight`` is one ``aget_or_set`` factory await that other coroutines
of the same event loop wait on. Either is *stale* once its key was written
or invalidated while it ran: its result still answers the callers already
waiting, but is not stored, because it may predate the change.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio


class Flight:
    """A running ``get_or_set`` factory call; other threads wait in ``result``."""

    __slots__ = ("key", "tags", "owner", "done", "value", "error", "stale")

    def __init__(self, key: str, tags: tuple[str, ...] = ()) -> None:
        self.key = key
        self.tags = tags
        self.owner = threading.get_ident()  # the thread that runs the factory
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.stale = False

    def fresh(self) -> bool:
        return not self.stale

    def settle(self, value: Any = None, error: BaseException | None = None) -> None:
        """Hand the waiters the value, or the exception when ``error`` is given."""
        self.value = value
        self.error = error
        self.done.set()

    def result(self) -> Any:
        if self.owner == threading.get_ident() and not self.done.is_set():
            # The factory asked for its own key: waiting would never end.
            raise RecursionError(
                f"get_or_set({self.key!r}) was called from its own factory; "
                "the thread would wait for itself forever"
            )
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value


class AsyncFlight:
    """A running ``aget_or_set`` factory await on one event loop.

    ``future`` gets the value or the exception; ``task`` is the task that
    awaits the factory (set by the leader once it exists).
    """

    __slots__ = ("key", "tags", "future", "task", "stale", "__weakref__")

    def __init__(
        self, key: str, loop: asyncio.AbstractEventLoop, tags: tuple[str, ...] = ()
    ) -> None:
        self.key = key
        self.tags = tags
        self.future: asyncio.Future[Any] = loop.create_future()
        self.task: asyncio.Task[Any] | None = None
        self.stale = False

    def fresh(self) -> bool:
        return not self.stale

    def settle(self, value: Any = None, error: BaseException | None = None) -> None:
        """Hand the waiters the value, or the exception when ``error`` is given."""
        future = self.future
        if future.done():
            return
        if error is None:
            future.set_result(value)
            return
        from asyncio import CancelledError  # imported on first use: see __init__

        if isinstance(error, CancelledError):
            future.cancel()
            return
        future.set_exception(error)
        # Every waiter may be gone (cancelled) by now; fetch the exception
        # so that asyncio does not log it as never retrieved.
        future.add_done_callback(_retrieve)


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class AsyncFlights(dict[tuple[int, str], "weakref.ref[AsyncFlight]"]):
    """The running async flights of one cache, by (id of the event loop, key).

    Held weakly: a loop closed while a flight was pending is not kept alive
    by the cache (the flight's future refers to its loop), and its entry
    goes when the flight is collected. A dict, so that "any flights?" on the
    hot paths costs no Python call.
    """

    __slots__ = ()

    def running(self, loop: asyncio.AbstractEventLoop, key: str) -> AsyncFlight | None:
        ref = self.get((id(loop), key))
        flight = None if ref is None else ref()
        if flight is None or flight.future.get_loop() is not loop:
            return None  # none, collected, or a dead loop's whose id was reused
        return flight

    def add(self, loop: asyncio.AbstractEventLoop, flight: AsyncFlight) -> None:
        slot = (id(loop), flight.key)

        def forget(ref: weakref.ref[AsyncFlight]) -> None:
            if self.get(slot) is ref:
                del self[slot]

        self[slot] = weakref.ref(flight, forget)

    def discard(self, flight: AsyncFlight) -> None:
        slot = (id(flight.future.get_loop()), flight.key)
        ref = self.get(slot)
        if ref is not None and ref() is flight:
            del self[slot]

    def flights(self) -> Iterator[AsyncFlight]:
        for ref in list(self.values()):
            flight = ref()
            if flight is not None:
                yield flight


def mark_stale(
    flights: dict[str, Flight],
    async_flights: AsyncFlights,
    matches: Callable[[str], object],
    tags: set[str] | frozenset[str] = frozenset(),
) -> None:
    """Mark every running flight of a matching key, or carrying one of ``tags``, stale."""
    running: list[Flight | AsyncFlight] = [*flights.values(), *async_flights.flights()]
    for flight in running:
        if matches(flight.key) or not tags.isdisjoint(flight.tags):
            flight.stale = True
