"""A weak registry of every ConnectionCache alive, for per-test isolation and counts.

Besides the caches, it keeps each cache's ``Counters`` and the counts at the
current test's start (``restart``), so that ``counts`` can say what every
cache did during the test, those collected meanwhile included (their counts
are added up after they go), without a hook call per operation. And it
finds the shared ``connection_cache`` without importing it (``shared_cache``).
"""

from __future__ import annotations

import sys
import threading
import weakref
from operator import add, sub
from typing import TYPE_CHECKING, Any

from ._stats import FIELDS, Counters

if TYPE_CHECKING:
    from ._cache import ConnectionCache

_SHARED_CACHE_MODULE = f"{__package__}._singleton"

# id -> weak reference. No lock: each operation on these is a single dict
# or list operation, atomic under the GIL, and a weakref callback (which can
# fire inside any allocation, even in a thread holding a lock) must never
# wait. Only ``_fold``, never called from a callback, takes a lock.
_caches: dict[int, weakref.ref[Any]] = {}
# id -> (counters, their values at the test's start)
_counters: dict[int, tuple[Counters, tuple[int, ...]]] = {}
# The counters of caches collected since the test's start, with their
# values at the start. The weakref callback only appends here: it may run
# while this very thread is reading those counters (under their lock), so
# it never reads them. ``_fold`` adds them up into ``_departed_counts``.
_departed: list[tuple[Counters, tuple[int, ...]]] = []
_ZEROS = [0] * len(FIELDS)
_departed_counts: list[int] = list(_ZEROS)
_fold_lock = threading.Lock()  # two threads making caches fold one at a time


def track(cache: object, counters: Counters) -> None:
    _fold()  # so that a process that makes and drops caches all day keeps no list
    key = id(cache)
    _counters[key] = (counters, (0,) * len(FIELDS))

    # The callback runs while the cache is being freed, before its id can
    # be given to a new object, so it never removes a newer cache's entry.
    def gone(_: object) -> None:
        _caches.pop(key, None)
        held = _counters.pop(key, None)
        if held is not None:
            _departed.append(held)

    _caches[key] = weakref.ref(cache, gone)


def tracking() -> bool:
    """Whether the counts since the last ``restart`` may be other than zero: a cache
    exists, or one was collected since. Without, ``restart`` has nothing to do."""
    return bool(_caches or _departed or _departed_counts != _ZEROS)


def restart(just_reset: bool = False) -> None:
    """A test starts: counts from now on.

    ``just_reset``: every cache's stats were reset a moment ago (the plugin
    resets them all before each test), so their baselines are the counts now.
    """
    for key, (counters, _) in _counters.copy().items():
        _counters[key] = (counters, counters.baseline if just_reset else counters.values())
    _departed.clear()
    _departed_counts[:] = _ZEROS


def _fold() -> None:
    """Add up what the collected caches counted since the test's start."""
    if not _departed:
        return
    with _fold_lock:
        while _departed:
            counters, then = _departed.pop()
            for i, (now, before) in enumerate(zip(counters.values(), then, strict=True)):
                _departed_counts[i] += now - before


def counts() -> dict[str, int]:
    """What every cache counted since ``restart``, by field (``_stats.FIELDS``)."""
    _fold()
    totals = list(_departed_counts)
    for counters, then in _counters.copy().values():
        totals = list(map(add, totals, map(sub, counters.values(), then)))
    return dict(zip(FIELDS, totals, strict=True))


def live_caches() -> list[ConnectionCache[Any]]:
    """A snapshot of the caches alive now; holding it keeps them alive, so drop it soon."""
    # dict.copy() runs no Python code while it copies, so no weakref callback
    # can change the registry under it (iterating it directly could).
    refs = _caches.copy().values()
    return [cache for cache in [ref() for ref in refs] if cache is not None]


def shared_cache() -> ConnectionCache[Any] | None:
    """The shared ``connection_cache``, or None while nothing imported it.

    Never imports it: the plugin's runs whose tests use no cache pay nothing
    for one, and a shared cache that does not exist yet cannot have been
    moved or filled.
    """
    module = sys.modules.get(_SHARED_CACHE_MODULE)
    if module is None:
        return None
    shared: ConnectionCache[Any] = module.connection_cache
    return shared
