"""assert_cached, assert_not_cached, assert_invalidated: peeking checks with useful failures.

The helpers raise ``AssertionError`` themselves with a finished message, so
they need no assertion rewriting, and they import nothing from pytest.
They peek: no counter and no recency changes.
"""

from __future__ import annotations

import math
from typing import Any, Final

from . import _validate
from ._cache import ConnectionCache
from ._removals import Removal
from ._singleton import connection_cache
from ._store import Entry


class _Anything:
    def __repr__(self) -> str:
        return "<any value>"


ANY: Final = _Anything()


def assert_cached(
    key: str, expected: Any = ANY, *, cache: ConnectionCache[Any] = connection_cache
) -> None:
    """Pass if ``key`` is live in ``cache`` (and equal to ``expected`` when given)."""
    __tracebackhide__ = True
    _validate.key(key)
    entry, removal, now = _peek(cache, key)
    if entry is not None and now < entry.expires_at:
        if expected is ANY or entry.value == expected:
            return
        raise AssertionError(
            f"key {key!r} is cached, but with another value\n"
            f"  cached:   {entry.value!r}\n"
            f"  expected: {expected!r}"
        )
    if entry is not None:
        why = f"it expired {_ago(now - entry.expires_at)} (ttl {_duration(entry.ttl)})"
    elif removal is not None:
        why = _removal_story(removal, now, cache)
    else:
        why = "it was never set (since the cache's stats were last reset)"
    raise AssertionError(f"key {key!r} is not cached: {why}{_similar(key, cache)}")


def assert_not_cached(key: str, *, cache: ConnectionCache[Any] = connection_cache) -> None:
    """Pass if ``key`` is not live in ``cache``, whatever the reason."""
    __tracebackhide__ = True
    _validate.key(key)
    entry, _, now = _peek(cache, key)
    if entry is not None and now < entry.expires_at:
        raise AssertionError(f"key {key!r} is still cached: {_live_story(entry, now)}")


def assert_invalidated(key: str, *, cache: ConnectionCache[Any] = connection_cache) -> None:
    """Pass if ``key`` is not live and was removed by an invalidating call since the last reset."""
    __tracebackhide__ = True
    _validate.key(key)
    entry, removal, now = _peek(cache, key)
    if entry is not None and now < entry.expires_at:
        raise AssertionError(
            f"key {key!r} was not invalidated: it is still cached: {_live_story(entry, now)}"
        )
    if entry is not None:
        raise AssertionError(
            f"key {key!r} was not invalidated: it expired {_ago(now - entry.expires_at)} "
            f"(ttl {_duration(entry.ttl)}) and is still stored, but no call removed it"
        )
    if removal is not None and removal.invalidated:
        return
    if removal is not None:
        raise AssertionError(
            f"key {key!r} was not invalidated: {_removal_story(removal, now, cache)}, "
            "and no call invalidated it since"
        )
    raise AssertionError(
        f"key {key!r} was not invalidated: it was never set "
        f"(since the cache's stats were last reset){_similar(key, cache)}"
    )


def _peek(cache: ConnectionCache[Any], key: str) -> tuple[Entry | None, Removal | None, float]:
    """(stored entry, last removal, now), without touching any counter."""
    return cache.peek_entry(key), cache.last_removal(key), cache.now()


def _live_story(entry: Any, now: float) -> str:
    left = entry.expires_at - now
    expiry = "never expires" if math.isinf(left) else f"expires in {_duration(left)}"
    return f"value {entry.value!r}, {expiry} (ttl {_duration(entry.ttl)})"


def _removal_story(removal: Removal, now: float, cache: ConnectionCache[Any]) -> str:
    if removal.how == "expired":
        return f"it expired {_ago(now - removal.at)} (ttl {_duration(removal.ttl)})"
    if removal.how == "evicted":
        return f"it was evicted {_ago(now - removal.at)} to respect max_entries={cache.max_entries}"
    return f"it was invalidated by {removal.how}() {_ago(now - removal.at)}"


def _similar(key: str, cache: ConnectionCache[Any]) -> str:
    """Up to three keys close to ``key``: key-format typos are the usual culprit.

    Recently removed keys are candidates too, with what became of them, so
    that a typo in an invalidation check points at the key really removed.
    """
    import difflib  # imported on first use: failures only

    stored = set(cache.keys())
    removed = cache.removals()
    candidates = (stored | set(removed)) - {key}
    matches = difflib.get_close_matches(key, sorted(candidates), n=3, cutoff=0.6)
    if not matches:
        return f"\n(the cache holds {len(stored)} entries; no stored or removed key is similar)"
    listed = "\n".join(f"  {match!r} ({_state(cache, match)})" for match in matches)
    return f"\nsimilar keys:\n{listed}"


def _state(cache: ConnectionCache[Any], key: str) -> str:
    """What became of ``key``, as it is now: cached, expired, or how it was removed."""
    entry, removal, now = _peek(cache, key)
    if entry is not None:
        if now < entry.expires_at:
            return "cached"
        return f"expired {_ago(now - entry.expires_at)}, still stored"
    if removal is not None:
        return _removal_story(removal, now, cache).removeprefix("it ")
    return "no longer stored"


def _duration(seconds: float) -> str:
    if math.isinf(seconds):
        return "inf"
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def _ago(seconds: float) -> str:
    return "just now" if seconds < 0.001 else f"{_duration(seconds)} ago"
