"""Clocks: the process default that caches built with ``clock=None`` read, and checks.

A cache reads ``holder.read()`` once per operation, where ``holder`` is the
process default (``default_clock``, or ``default_wall_clock`` for caches on a
store shared between processes) or a ``FixedClock`` around an injected
callable. Callables this package did not write are wrapped by ``checked``,
so that a clock returning something other than a real number fails with an
error naming the clock instead of a puzzling comparison error deep inside.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from numbers import Real

from ._validate import shown

Clock = Callable[[], float]

# Builtins known to return floats: not worth a wrapper on every read.
_TRUSTED = (time.monotonic, time.time, time.perf_counter, time.process_time, time.thread_time)


def checked(read: Clock) -> Clock:
    """``read``, or a wrapper around it that rejects readings that are not real numbers."""
    if any(read is trusted for trusted in _TRUSTED):
        return read

    def checked_read() -> float:
        now: object = read()
        if type(now) is float or type(now) is int:
            return now
        if not isinstance(now, bool) and isinstance(now, Real):
            return float(now)
        raise TypeError(
            f"clock {read!r} must return a real number of seconds, "
            f"got {shown(now)} ({type(now).__name__})"
        )

    return checked_read


class DefaultClock:
    """Seconds from ``fallback`` (``time.monotonic``) unless something redirected it.

    Caches keep a reference to this object, not to the function it reads, so
    one ``redirect`` moves every default-clock cache at once (the
    ``frozen_clock`` fixture relies on that).
    """

    __slots__ = ("read", "source", "fallback", "redirected_at")

    def __init__(self, fallback: Clock = time.monotonic) -> None:
        self.fallback = fallback
        self.source: Clock = fallback  # what redirect() was given
        self.read: Clock = fallback  # the same, checked
        # Where redirect() was last called (file, line): the plugin names it
        # when a test leaves the clock redirected.
        self.redirected_at: tuple[str, int] | None = None

    def __call__(self) -> float:
        return self.read()

    def redirect(self, read: Clock) -> None:
        if not callable(read):
            raise TypeError(
                f"read must be a zero-argument callable, got {shown(read)} ({type(read).__name__})"
            )
        caller = sys._getframe(1)
        self.source = read
        self.read = checked(read)
        self.redirected_at = (caller.f_code.co_filename, caller.f_lineno)

    def restore(self) -> None:
        self.source = self.read = self.fallback

    @property
    def redirected(self) -> bool:
        return self.source is not self.fallback


class FixedClock:
    """Holder for a clock injected into one cache; same shape as DefaultClock."""

    __slots__ = ("read", "source")

    def __init__(self, read: Clock) -> None:
        self.source = read
        self.read = checked(read)

    def __call__(self) -> float:
        return self.read()


#: What in-memory caches built with ``clock=None`` read: ``time.monotonic``.
default_clock = DefaultClock()

#: What caches on a shared store (Redis) built with ``clock=None`` read:
#: wall time, since monotonic clocks of two processes cannot be compared.
#: time-machine freezes ``time.time``, so ``frozen_clock`` stops it too.
default_wall_clock = DefaultClock(time.time)
