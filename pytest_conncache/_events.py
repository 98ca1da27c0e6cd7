"""The ``conncache events`` section: what the caches did during a failed test, in order.

The plugin records every cache's events in a bounded ring (``observers.record``,
see ``_hooks``): ``(cache, kind, key, now, detail)``, ``now`` on the cache's own
clock. Times print relative to the test's start on that clock: the default
clocks' readings at the start are given; a cache with a clock of its own
counts from its first event. Under ``frozen_clock`` the default clocks are
the frozen ones, so the times are the test's fake times.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ._clock import DefaultClock
from ._registry import shared_cache

# How many events a failed test's report shows at most (the most recent).
SHOWN = 50

Event = tuple[Any, str, str, float, Any]


def section(
    events: Iterable[Event], starts: dict[int, float], total: int, frozen: bool
) -> str | None:
    """The section's text, or None when no cache did anything.

    ``starts``: id of a clock holder (``default_clock``, ``default_wall_clock``)
    -> its reading at the test's start. ``total``: how many events the test
    had in all (the ring keeps the last ``SHOWN``).
    """
    listed = list(events)
    if not listed:
        return None
    names = {id(event[0]): _name(event[0]) for event in listed}
    width = max(len(name) for name in names.values())
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    lines = []
    for cache, kind, key, now, detail in listed:
        about = ""
        if math.isnan(now) and id(cache) in last:
            # An injected clock the operation did not read: about its last time.
            now, about = last[id(cache)], "~"
        last[id(cache)] = now
        base = _base(cache, now, starts, first)
        where = f"{names[id(cache)]:<{width}}  " if len(names) > 1 else ""
        offset = about + _offset(now - base)
        lines.append(f"{offset:>10}  {where}{kind:<12} {key!r:.120}{_detail(kind, detail)}")
    shown = f"the last {len(listed)} of {total}" if total > len(listed) else f"{len(listed)}"
    clock = "on the frozen clock" if frozen else "since the test started"
    return f"{shown} cache events, times {clock}:\n" + "\n".join(lines)


def _base(cache: Any, now: float, starts: dict[int, float], first: dict[int, float]) -> float:
    if isinstance(cache.clock, DefaultClock) and starts:
        # On a default clock: the one whose start is nearest (a cache may have
        # moved between the monotonic and the wall clock since the event).
        return min(starts.values(), key=lambda start: abs(now - start))
    return first.setdefault(id(cache), now)


def _name(cache: Any) -> str:
    return "connection_cache" if cache is shared_cache() else f"cache@{id(cache):x}"


def _offset(seconds: float) -> str:
    if math.isinf(seconds) or math.isnan(seconds):
        return "?"
    if -0.0005 < seconds < 0:
        seconds = 0.0  # a rounding error of the frozen clock's continuity, not a step back
    return f"{seconds:+.3f}s" if abs(seconds) < 1000 else f"{seconds:+,.0f}s"


def _detail(kind: str, detail: Any) -> str:
    if kind == "set" and isinstance(detail, (int, float)):
        return "  ttl=inf" if math.isinf(detail) else f"  ttl={detail:g}s"
    if kind == "invalidation" and detail:
        return f"  by {detail}()"
    return ""
