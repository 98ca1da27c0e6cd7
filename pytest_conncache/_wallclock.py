"""The default clock of Redis-backed caches: wall time, redirectable in one place.

Monotonic clocks of two processes cannot be compared, so entries shared
through Redis carry wall-clock expiry times. Caches built with ``clock=None``
read ``default_wall_clock`` on Redis, as they read ``default_clock`` in memory;
time-machine freezes ``time.time``, and a fixture may also redirect this holder.
"""

from __future__ import annotations

import time

from ._clock import DefaultClock


class WallClock(DefaultClock):
    """Seconds from ``time.time`` unless something redirected it."""

    __slots__ = ()

    def __init__(self) -> None:
        self.read = time.time

    def restore(self) -> None:
        self.read = time.time

    @property
    def redirected(self) -> bool:
        return self.read is not time.time


default_wall_clock = WallClock()
