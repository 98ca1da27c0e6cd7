"""A weak registry of every ConnectionCache alive, for per-test isolation."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cache import ConnectionCache

# id -> weak reference. No lock: each operation below is a single dict
# operation, atomic under the GIL, and a weakref callback (which can fire
# inside any allocation, even in a thread holding a lock) must never wait.
_caches: dict[int, weakref.ref[Any]] = {}


def track(cache: object) -> None:
    key = id(cache)
    # The callback runs while the cache is being freed, before its id can
    # be given to a new object, so it never removes a newer cache's entry.
    _caches[key] = weakref.ref(cache, lambda _: _caches.pop(key, None))


def live_caches() -> list[ConnectionCache[Any]]:
    """A snapshot of the caches alive now; holding it keeps them alive, so drop it soon."""
    # dict.copy() runs no Python code while it copies, so no weakref callback
    # can change the registry under it (iterating it directly could).
    refs = _caches.copy().values()
    return [cache for cache in [ref() for ref in refs] if cache is not None]
