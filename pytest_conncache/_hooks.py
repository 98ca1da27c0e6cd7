"""The observer interface: pluggy hooks fired by every ConnectionCache.

Register any object with ``@hookimpl``-marked methods on ``observers``::

    class Metrics:
        @hookimpl
        def conncache_hit(self, cache, key): ...

    observers.register(Metrics())

Calling a pluggy hook costs close to a microsecond even when nothing
implements it, so caches only call hooks while ``observers.active`` is true,
which holds exactly when at least one observer is registered.
"""

from __future__ import annotations

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
    def conncache_hit(self, cache: ConnectionCache[Any], key: str) -> None:
        """A lookup found a live entry."""

    @hookspec
    def conncache_miss(self, cache: ConnectionCache[Any], key: str) -> None:
        """A lookup found no live entry."""

    @hookspec
    def conncache_set(self, cache: ConnectionCache[Any], key: str) -> None:
        """An entry was stored (new or replaced)."""

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
    """A PluginManager that keeps a cheap ``active`` flag for the caches' hot paths."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(CacheObserverSpec)
        self.active = False

    def register(self, plugin: object, name: str | None = None) -> str | None:
        registered = super().register(plugin, name)
        self.active = bool(self.get_plugins())
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any:
        removed = super().unregister(plugin, name)
        self.active = bool(self.get_plugins())
        return removed


observers = ObserverManager()
