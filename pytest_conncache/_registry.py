"""A weak registry of every ConnectionCache alive, for per-test isolation and counts.

Besides the caches, it keeps each cache's ``Counters`` and the counts at the
current test's start (``restart``), so that ``counts`` can say what every
cache did during the test, those collected meanwhile included (their counts
are added up when they go), without a hook call per operation.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from ._stats import FIELDS, Counters

if TYPE_CHECKING:
    from ._cache import ConnectionCache

# id -> weak reference. No lock: each operation below is a single dict
# operation, atomic under the GIL, and a weakref callback (which can fire
# inside any allocation, even in a thread holding a lock) must never wait.
_caches: dict[int, weakref.ref[Any]] = {}
# id -> (counters, their values at the test's start)
_counters: dict[int, tuple[Counters, tuple[int, ...]]] = {}
# What caches collected since the test's start counted before they went.
_departed: list[int] = [0] * len(FIELDS)


def track(cache: object, counters: Counters) -> None:
    key = id(cache)
    _counters[key] = (counters, (0,) * len(FIELDS))

    # The callback runs while the cache is being freed, before its id can
    # be given to a new object, so it never removes a newer cache's entry.
    def gone(_: object) -> None:
        _caches.pop(key, None)
        held = _counters.pop(key, None)
        if held is not None:
            for i, (now, then) in enumerate(zip(held[0].values(), held[1], strict=True)):
                _departed[i] += now - then

    _caches[key] = weakref.ref(cache, gone)


def restart(just_reset: bool = False) -> None:
    """A test starts: counts from now on.

    ``just_reset``: every cache's stats were reset a moment ago (the plugin
    resets them all before each test), so their baselines are the counts now.
    """
    for key, (counters, _) in _counters.copy().items():
        _counters[key] = (counters, counters.baseline if just_reset else counters.values())
    _departed[:] = [0] * len(FIELDS)


def counts() -> dict[str, int]:
    """What every cache counted since ``restart``, by field (``_stats.FIELDS``)."""
    totals = list(_departed)
    for counters, then in _counters.copy().values():
        for i, (now, before) in enumerate(zip(counters.values(), then, strict=True)):
            totals[i] += now - before
    return dict(zip(FIELDS, totals, strict=True))


def live_caches() -> list[ConnectionCache[Any]]:
    """A snapshot of the caches alive now; holding it keeps them alive, so drop it soon."""
    # dict.copy() runs no Python code while it copies, so no weakref callback
    # can change the registry under it (iterating it directly could).
    refs = _caches.copy().values()
    return [cache for cache in [ref() for ref in refs] if cache is not None]
