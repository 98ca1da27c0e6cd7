"""The process-wide default clock that caches built with ``clock=None`` read."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


class DefaultClock:
    """Seconds from ``time.monotonic`` unless something redirected it.

    Caches keep a reference to this object, not to the function it reads, so
    one ``redirect`` moves every default-clock cache at once (the
    ``frozen_clock`` fixture relies on that).
    """

    __slots__ = ("read",)

    def __init__(self) -> None:
        self.read: Clock = time.monotonic

    def __call__(self) -> float:
        return self.read()

    def redirect(self, read: Clock) -> None:
        if not callable(read):
            raise TypeError(f"read must be a zero-argument callable, got {read!r}")
        self.read = read

    def restore(self) -> None:
        self.read = time.monotonic

    @property
    def redirected(self) -> bool:
        return self.read is not time.monotonic


class FixedClock:
    """Holder for a clock injected into one cache; same shape as DefaultClock."""

    __slots__ = ("read",)

    def __init__(self, read: Clock) -> None:
        self.read = read

    def __call__(self) -> float:
        return self.read()


default_clock = DefaultClock()
