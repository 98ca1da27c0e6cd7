"""A weak registry of every ConnectionCache alive, for per-test isolation."""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._cache import ConnectionCache

_lock = threading.Lock()
_caches: weakref.WeakSet[ConnectionCache[Any]] = weakref.WeakSet()


def track(cache: ConnectionCache[Any]) -> None:
    with _lock:
        _caches.add(cache)


def live_caches() -> list[ConnectionCache[Any]]:
    """A snapshot of the caches alive now; holding it keeps them alive, so drop it soon."""
    with _lock:
        return list(_caches)
