"""The observer interface: pluggy hooks fired by every ConnectionCache.

Register any object with ``@hookimpl``-marked methods on ``observers``::

    class Metrics:
        @hookimpl
        def conncache_hit(self, cache, key): ...

    observers.register(Metrics())

Calling a pluggy hook costs close to a microsecond even when nothing
implements it, so caches only call hooks while ``observers.hooked`` is true,
which holds exactly when at least one observer is registered.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from ._cache import ConnectionCache

PROJECT_NAME = "pytest_conncache"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class CacheObserverSpec:
    """Hook specifications. Implementations may take any subset of the arguments."""

    @hookspec
    def conncache_hit(self, cache: ConnectionCache[Any], key: str, value: Any) -> None:
        """A lookup found a live entry; ``value`` is what the caller got."""

    @hookspec
    def conncache_miss(self, cache: ConnectionCache[Any], key: str) -> None:
        """A lookup found no live entry."""

    @hookspec
    def conncache_set(self, cache: ConnectionCache[Any], key: str, value: Any) -> None:
        """An entry was stored (new or replaced); ``value`` is what the caller stored."""

    @hookspec
    def conncache_invalidation(self, cache: ConnectionCache[Any], key: str, how: str) -> None:
        """An entry was removed explicitly; ``how`` names the method that removed it."""

    @hookspec
    def conncache_expiration(self, cache: ConnectionCache[Any], key: str) -> None:
        """An expired entry was removed."""

    @hookspec
    def conncache_eviction(self, cache: ConnectionCache[Any], key: str) -> None:
        """A live entry was pushed out to respect ``max_entries``."""


class ObserverManager(pluggy.PluginManager):
    """A PluginManager that keeps cheap flags for the caches' hot paths.

    ``hooked``: an observer is registered. ``ring``: where the pytest plugin
    records the current test's events (``record``), without a hook call:
    ``(cache, kind, key, now, detail)`` tuples, ``now`` on the cache's clock,
    ``detail`` the ttl of a set or the ``how`` of an invalidation. ``active``:
    either, so that a cache with nobody listening checks one flag.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(CacheObserverSpec)
        self.active = False
        self.hooked = False
        self.ring: deque[tuple[Any, str, str, float, Any]] | None = None

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        self._changed()
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self._changed()
        return removed

    def record(self, last: int | None) -> deque[tuple[Any, str, str, float, Any]] | None:
        """Record every cache's events in an empty ring of the ``last`` ones (None: stop).

        Called before every test: a ring of the same size is emptied, not replaced."""
        ring = self.ring
        if last is None:
            self.ring = None
        elif ring is not None and ring.maxlen == last:
            ring.clear()
        else:
            self.ring = deque(maxlen=last)
        self.active = self.hooked or self.ring is not None
        return self.ring

    def _changed(self) -> None:
        self.hooked = bool(self.get_plugins())
        self.active = self.hooked or self.ring is not None


observers = ObserverManager()
