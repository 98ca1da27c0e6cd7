"""FrozenClock: one frozen time for time.time(), datetime.now() and default-clock caches.

time-machine freezes wall time but (from version 3) not ``time.monotonic``,
which default-clock caches read. So while frozen, the default clock is
redirected to a reading derived from time-machine's frozen wall time: any
move of that time, by ``advance``/``move_to`` here or by time-machine's own
``time_machine`` fixture, moves the caches by the same amount.

The plugin hands it time-machine's fixture; this module imports neither
pytest nor time_machine.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from typing import Protocol

from ._clock import Clock, default_clock
from ._freezegun import freezegun_use, refusal

# The base is rounded to a multiple of 2**-10 s so that sums of whole or
# binary-fraction seconds stay exact: an entry set at t with ttl d then
# expires exactly when the clock has advanced by d, without rounding drift.
_GRID = 1024


class TravelControl(Protocol):
    """The part of time-machine's ``TimeMachineFixture`` that FrozenClock uses."""

    def move_to(self, destination: dt.datetime, tick: bool | None = None) -> None: ...
    def shift(self, delta: dt.timedelta | float) -> None: ...


class FrozenClock:
    """Frozen time for one test; see the ``frozen_clock`` fixture."""

    def __init__(self, control: TravelControl) -> None:
        self._control = control
        # Freeze where time is now: the real now, or wherever a time_machine
        # marker already put the test.
        control.move_to(dt.datetime.now(dt.timezone.utc), tick=False)
        self._wall_base_ns = time.time_ns()
        self._previous_read: Clock = default_clock.source
        self._monotonic_base = math.floor(self._previous_read() * _GRID) / _GRID
        default_clock.redirect(self.monotonic)

    def monotonic(self) -> float:
        """The frozen reading of the caches' default clock, in seconds."""
        return self._monotonic_base + (time.time_ns() - self._wall_base_ns) / 1e9

    def advance(self, seconds: float | dt.timedelta) -> None:
        """Move time and every default-clock cache forward by ``seconds`` (or a timedelta)."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float, dt.timedelta)):
            raise TypeError(
                "seconds must be a number of seconds or a datetime.timedelta, "
                f"got {seconds!r} ({type(seconds).__name__})"
            )
        delta = seconds.total_seconds() if isinstance(seconds, dt.timedelta) else seconds
        if math.isnan(delta) or math.isinf(delta) or delta < 0:
            raise ValueError(
                f"seconds must be a finite number >= 0 (time only moves forward), got {seconds!r}"
            )
        _refuse_active_freezegun()
        self._control.shift(seconds if isinstance(seconds, dt.timedelta) else float(seconds))

    def move_to(self, destination: dt.datetime) -> None:
        """Jump to ``destination`` (a naive datetime is taken as UTC); caches jump with it."""
        if not isinstance(destination, dt.datetime):
            raise TypeError(
                f"destination must be a datetime.datetime, got {destination!r} "
                f"({type(destination).__name__})"
            )
        if destination.tzinfo is None:
            destination = destination.replace(tzinfo=dt.timezone.utc)
        _refuse_active_freezegun()
        self._control.move_to(destination, tick=False)

    def now(self) -> dt.datetime:
        """The frozen time as an aware UTC datetime."""
        return dt.datetime.now(dt.timezone.utc)

    def time(self) -> float:
        """The frozen time in epoch seconds, as ``time.time()`` returns it."""
        return time.time()

    def close(self) -> None:
        """Give the default clock back; idempotent."""
        if default_clock.source == self.monotonic:
            default_clock.redirect(self._previous_read)

    def __repr__(self) -> str:
        return f"<FrozenClock at {self.now().isoformat()}>"


def _refuse_active_freezegun() -> None:
    # A freeze_time(...) block started inside the test, after the fixture's
    # own check: the move would silently change nothing.
    how = freezegun_use()
    if how is not None:
        raise RuntimeError(refusal(how))
