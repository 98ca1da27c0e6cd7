"""CacheStats: an immutable snapshot of a cache's counters."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters of one cache since it was created or last reset.

    ``errors`` counts backend faults that were served as misses (the Redis
    backend's fail-open reads); it stays 0 in memory.
    """

    hits: int = 0
    misses: int = 0
    sets: int = 0
    invalidations: int = 0
    expirations: int = 0
    evictions: int = 0
    errors: int = 0

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_ratio(self) -> float | None:
        """Hits divided by lookups, or None before the first lookup."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else None

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
