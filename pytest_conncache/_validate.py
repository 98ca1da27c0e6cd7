"""Argument checks shared by the cache and the fixtures.

Every error names the argument and shows the value, so a bad call site is
found from the message alone.
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any

Seconds = float | int | timedelta


def seconds(value: object, name: str) -> float:
    """A duration (seconds or timedelta) that must be > 0; ``math.inf`` is allowed."""
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise TypeError(
            f"{name} must be a number of seconds or a datetime.timedelta, "
            f"got {value!r} ({type(value).__name__})"
        )
    try:
        result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    except OverflowError:  # an int past float range: positive ones never expire
        result = math.inf if not isinstance(value, timedelta) and value > 0 else -math.inf
    if math.isnan(result) or result <= 0:
        raise ValueError(f"{name} must be > 0 seconds (math.inf for no expiry), got {value!r}")
    return result


def key(value: object, name: str = "key") -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {value!r} ({type(value).__name__})")
    return value


def max_entries(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"max_entries must be a positive int or None, got {value!r} ({type(value).__name__})"
        )
    if value < 1:
        raise ValueError(f"max_entries must be >= 1 (or None for no bound), got {value!r}")
    return value


def pattern(value: object) -> re.Pattern[str]:
    if isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as exc:
            raise re.error(
                f"pattern {value!r} is not a valid regular expression: {exc.msg}",
                exc.pattern,
                exc.pos,
            ) from None
    if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
        compiled: re.Pattern[str] = value
        return compiled
    raise TypeError(
        f"pattern must be a str or a compiled str re.Pattern, "
        f"got {value!r} ({type(value).__name__})"
    )


def callable_(value: Any, name: str) -> Any:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {value!r} ({type(value).__name__})")
    return value
