"""Running the contract tests through the awaitable twins as well as the sync methods.

``AsyncView(cache, loop)`` looks like the cache, but each method that has an
awaitable twin (``get`` -> ``aget``, ``get_or_set`` -> ``aget_or_set`` ...)
runs that twin on an event loop in a thread of its own and returns its
result, so that a test written against the sync API checks the async one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from pytest_conncache import ConnectionCache

T = TypeVar("T")


class LoopThread:
    """An event loop running in a daemon thread until ``close``."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def close(self) -> None:
        async def shutdown() -> None:
            await self.loop.shutdown_asyncgens()

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class AsyncView:
    """The cache seen through its awaitable twins (see the module docstring)."""

    def __init__(self, cache: ConnectionCache[Any], loop: LoopThread) -> None:
        self.wrapped = cache
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.wrapped, name)
        twin = getattr(self.wrapped, "a" + name, None)
        if twin is None or not callable(attribute):
            return attribute
        run = self._loop.run
        if name == "get_or_set":

            def get_or_set(key: Any, factory: Callable[[], Any], *args: Any, **kw: Any) -> Any:
                return run(twin(key, _awaitable(factory), *args, **kw))

            return get_or_set
        return lambda *args, **kwargs: run(twin(*args, **kwargs))

    def __contains__(self, key: object) -> bool:
        return key in self.wrapped

    def __len__(self) -> int:
        return len(self.wrapped)

    def __iter__(self) -> Iterator[Any]:
        raise TypeError("a ConnectionCache is not iterable")

    def __repr__(self) -> str:
        return f"<AsyncView of {self.wrapped!r}>"


def _awaitable(factory: Any) -> Any:
    """An async factory doing what a sync one does (a non-callable stays as it is)."""
    if not callable(factory):
        return factory

    async def call() -> Any:
        return factory()

    return call


def unwrapped(cache: Any) -> ConnectionCache[Any]:
    """The cache itself, whether ``cache`` is one or an ``AsyncView`` of one."""
    inner: ConnectionCache[Any] = getattr(cache, "wrapped", cache)
    return inner
