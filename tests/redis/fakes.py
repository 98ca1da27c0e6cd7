"""Test doubles for the Redis backend's tests."""

from __future__ import annotations


class FakeClock:
    """A clock that only moves when told to; starts at 0 (caches must cope)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
