"""RemovalLog: a bounded memory of why keys left a cache, for failure messages."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import NamedTuple

# How many removed keys a cache remembers; the most recent ones win.
REMOVAL_MEMORY = 4096

INVALIDATING_CALLS = frozenset(
    {
        "invalidate",
        "invalidate_many",
        "invalidate_pattern",
        "invalidate_prefix",
        "invalidate_tag",
        "clear",
    }
)


class Removal(NamedTuple):
    """Why and when a key was removed.

    ``how`` is the removing call (``"invalidate"``, ``"invalidate_pattern"``,
    ``"invalidate_prefix"``, ``"clear"``), or ``"expired"`` / ``"evicted"``.
    ``at`` is the cache-clock time of the removal, except for expirations,
    where it is the moment the entry expired. ``ttl`` is the entry's ttl.
    """

    how: str
    at: float
    ttl: float

    @property
    def invalidated(self) -> bool:
        return self.how in INVALIDATING_CALLS


class RemovalLog(OrderedDict[str, Removal]):
    """The most recent removals by key, oldest first, at most ``limit`` of them.

    An OrderedDict itself, so that "anything recorded?" on the cache's hot
    paths costs no Python call.
    """

    def __init__(self, limit: int = REMOVAL_MEMORY) -> None:
        super().__init__()
        self.limit = limit

    def record(self, key: str, removal: Removal) -> None:
        self[key] = removal
        self.move_to_end(key)
        if len(self) > self.limit:
            self.popitem(last=False)

    def record_many(self, removed: Iterable[tuple[str, Removal]]) -> None:
        # record() inlined, trimming once at the end: the same result (the
        # most recent keys win) without a method call and a trim per key.
        for key, removal in removed:
            self[key] = removal
            self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)

    def snapshot(self) -> dict[str, Removal]:
        return dict(self)

    def forget(self, key: str) -> None:
        self.pop(key, None)
