"""The interface between a ConnectionCache and a storage backend other than memory.

A backend ``bind``s to one cache and returns an object whose ``methods()``
the cache installs on the instance, in place of its in-memory ones. The
in-memory path therefore pays nothing for backends; only properties and
dunder methods, which Python looks up on the type, ask ``cache._backend``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._cache import ConnectionCache
    from ._clock import Clock
    from ._stats import CacheStats


class BoundBackend(Protocol):
    """One cache's view of a backend."""

    @property
    def backend(self) -> Backend: ...

    def methods(self) -> dict[str, Callable[..., Any]]:
        """Public (and helper-facing private) methods that replace the in-memory ones."""
        ...

    def contains(self, key: object) -> bool: ...

    def size(self) -> int: ...

    def stats(self) -> CacheStats: ...

    def clock(self) -> Clock: ...

    def describe(self) -> str: ...


class Backend(Protocol):
    def bind(self, cache: ConnectionCache[Any]) -> BoundBackend: ...
