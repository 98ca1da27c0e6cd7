"""Argument checks shared by the cache and the fixtures.

Every error names the argument and shows the value, shortened to about 200
characters, so a bad call site is found from the message alone, and a
10 MB key does not make a 10 MB message.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

Seconds = float | int | timedelta

_SHOWN = 200


def shown(value: object) -> str:
    """``repr(value)``, its middle elided past about 200 characters."""
    text = repr(value)
    if len(text) <= _SHOWN:
        return text
    return f"{text[:150]}...<{len(text) - 190} characters>...{text[-40:]}"


def seconds(value: object, name: str) -> float:
    """A duration (seconds or timedelta) that must be > 0; ``math.inf`` is allowed."""
    if isinstance(value, bool) or not isinstance(value, (int, float, timedelta)):
        raise TypeError(
            f"{name} must be a number of seconds or a datetime.timedelta, "
            f"got {shown(value)} ({type(value).__name__})"
        )
    try:
        result = value.total_seconds() if isinstance(value, timedelta) else float(value)
    except OverflowError:  # an int past float range: positive ones never expire
        result = math.inf if not isinstance(value, timedelta) and value > 0 else -math.inf
    if math.isnan(result) or result <= 0:
        raise ValueError(f"{name} must be > 0 seconds (math.inf for no expiry), got {shown(value)}")
    return result


def key(value: object, name: str = "key") -> str:
    """A str that every store can hold: UTF-8 encodable (no lone surrogates)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, got {shown(value)} ({type(value).__name__})")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError as error:
            raise ValueError(
                f"{name} must be encodable as UTF-8, got {shown(value)} ({error.reason} "
                f"at position {error.start})"
            ) from None
    return value


def keys(values: object, name: str = "keys") -> list[str]:
    """The distinct valid keys of an iterable of str, in order (a lone str is refused,
    not split into characters)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(
            f"{name} must be an iterable of str, got {shown(values)} ({type(values).__name__})"
        )
    distinct = list(dict.fromkeys(values))
    for i, item in enumerate(distinct):
        if type(item) is not str or not item.isascii():
            key(item, f"{name}[{i}]")
    return distinct


def tags(values: object) -> tuple[str, ...]:
    """Tag labels: an iterable of non-empty str (a lone str is refused, not split)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(
            f"tags must be an iterable of str, got {shown(values)} ({type(values).__name__})"
        )
    result = tuple(dict.fromkeys(key(tag, "tag") for tag in values))
    if "" in result:
        raise ValueError("tags must be non-empty strings, got ''")
    return result


def max_entries(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"max_entries must be a positive int or None, got {shown(value)} "
            f"({type(value).__name__})"
        )
    if value < 1:
        raise ValueError(f"max_entries must be >= 1 (or None for no bound), got {shown(value)}")
    return value


def pattern(value: object) -> re.Pattern[str]:
    if isinstance(value, str):
        try:
            return re.compile(value)
        except re.error as exc:
            raise re.error(
                f"pattern {shown(value)} is not a valid regular expression: {exc.msg}",
                exc.pattern,
                exc.pos,
            ) from None
    if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
        compiled: re.Pattern[str] = value
        return compiled
    raise TypeError(
        f"pattern must be a str or a compiled str re.Pattern, "
        f"got {shown(value)} ({type(value).__name__})"
    )


def callable_(value: Any, name: str) -> Any:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {shown(value)} ({type(value).__name__})")
    return value
