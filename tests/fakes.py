"""Test doubles shared by the core's tests."""

from __future__ import annotations

from datetime import timedelta


class FakeClock:
    """A clock that only moves when told to: ``now`` seconds, read by calling it."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float | timedelta) -> None:
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        self.now += seconds
