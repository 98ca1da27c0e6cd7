"""A Hypothesis state machine checks every answer and counter against a plain dict model."""

from __future__ import annotations

import itertools
import math
import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from pytest_conncache import CacheStats, ConnectionCache, RedisBackend
from tests.fakes import FakeClock

KEYS = [
    "user-record:a:1",
    "user-record:a:2",
    "user-record:a",
    "user-record:b:1",
    "user-connections:a",
    "connection:1",
    "connection:12",
    "",
]
PREFIXES = ["", "user-", "user-record:", "user-record:a", "user-record:a:1", "connection:1", "x"]
PATTERNS = ["^user-record:a", ":1$", "record", "^connection:", "a|12", "^$", r"\d{2}", "zzz"]
TTLS = [None, 0.5, 1, 2.5, 5, 10, math.inf]
STEPS = [0.0, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
DEFAULT_TTL = 5.0

keys = st.sampled_from(KEYS)
values = st.integers(min_value=0, max_value=5) | st.none()
MISSING = object()


@dataclass
class Entry:
    value: Any
    expires_at: float


class CacheModel(RuleBasedStateMachine):
    """Drives a ConnectionCache and a reference model side by side."""

    max_entries: int | None = None
    # Every duration is multiplied by this. The Redis variant raises it, so
    # that the server's own expiry, which runs on real time, never fires
    # during an example.
    time_scale = 1.0
    # Whether a set over an expired, unread entry counts an expiration: in
    # memory it does; a Redis store's script does not say (README, "The report").
    replacing_expired_counts = True

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(0.0)
        self.cache: ConnectionCache[Any] = ConnectionCache(
            DEFAULT_TTL * self.time_scale, clock=self.clock, max_entries=self.max_entries
        )
        self.model: OrderedDict[str, Entry] = OrderedDict()  # oldest use first
        self.counts = dict.fromkeys(
            ("hits", "misses", "sets", "invalidations", "expirations", "evictions"), 0
        )

    @initialize(start=st.sampled_from([0.0, -100.0, -0.5, 1000.25]))
    def start_clock(self, start: float) -> None:
        self.clock.now = start * self.time_scale

    # -- the model -------------------------------------------------------------

    @property
    def now(self) -> float:
        return self.clock.now

    def live(self, key: str) -> bool:
        entry = self.model.get(key)
        return entry is not None and self.now < entry.expires_at

    def model_lookup(self, key: str) -> Any:
        """A counted read: the live value (hit), else MISSING (miss, expiring if needed)."""
        entry = self.model.get(key)
        if entry is not None and self.now < entry.expires_at:
            self.counts["hits"] += 1
            self.model.move_to_end(key)
            return entry.value
        if entry is not None:
            del self.model[key]
            self.counts["expirations"] += 1
        self.counts["misses"] += 1
        return MISSING

    def scaled(self, ttl: float | None) -> float | None:
        return None if ttl is None else ttl * self.time_scale

    def model_store(self, key: str, value: Any, ttl: float | None) -> None:
        seconds = DEFAULT_TTL * self.time_scale if ttl is None else float(ttl)
        old = self.model.get(key)
        if old is not None and self.now >= old.expires_at and self.replacing_expired_counts:
            self.counts["expirations"] += 1  # replaced after it expired, unread
        if key not in self.model and self.max_entries is not None:
            if len(self.model) >= self.max_entries:
                expired = [k for k, e in self.model.items() if self.now >= e.expires_at]
                for k in expired:
                    del self.model[k]
                self.counts["expirations"] += len(expired)
            if len(self.model) >= self.max_entries:
                self.model.popitem(last=False)
                self.counts["evictions"] += 1
        self.model[key] = Entry(value, self.now + seconds)
        self.model.move_to_end(key)
        self.counts["sets"] += 1

    def model_remove(self, doomed: list[str]) -> int:
        for key in doomed:
            del self.model[key]
        self.counts["invalidations"] += len(doomed)
        return len(doomed)

    # -- rules -------------------------------------------------------------------

    @rule(key=keys, value=values, ttl=st.sampled_from(TTLS))
    def set(self, key: str, value: Any, ttl: float | None) -> None:
        ttl = self.scaled(ttl)
        self.cache.set(key, value, ttl=ttl)
        self.model_store(key, value, ttl)

    @rule(key=keys)
    def get(self, key: str) -> None:
        expected = self.model_lookup(key)
        result = self.cache.get(key, MISSING)
        assert result is expected if expected is MISSING else result == expected

    @rule(key=keys, value=values, ttl=st.sampled_from(TTLS))
    def get_or_set(self, key: str, value: Any, ttl: float | None) -> None:
        ttl = self.scaled(ttl)
        calls: list[int] = []

        def factory() -> Any:
            calls.append(1)
            return value

        found = self.model_lookup(key)
        if found is MISSING:
            self.model_store(key, value, ttl)
        result = self.cache.get_or_set(key, factory, ttl=ttl)
        if found is MISSING:
            assert (result, calls) == (value, [1])
        else:
            assert (result, calls) == (found, [])

    @rule(key=keys)
    def invalidate(self, key: str) -> None:
        expected = key in self.model
        if expected:
            self.model_remove([key])
        assert self.cache.invalidate(key) is expected

    @rule(pattern=st.sampled_from(PATTERNS), compiled=st.booleans())
    def invalidate_pattern(self, pattern: str, compiled: bool) -> None:
        expected = self.model_remove([k for k in self.model if re.search(pattern, k)])
        argument: str | re.Pattern[str] = re.compile(pattern) if compiled else pattern
        assert self.cache.invalidate_pattern(argument) == expected

    @rule(prefix=st.sampled_from(PREFIXES))
    def invalidate_prefix(self, prefix: str) -> None:
        expected = self.model_remove([k for k in self.model if k.startswith(prefix)])
        assert self.cache.invalidate_prefix(prefix) == expected

    @rule()
    def clear(self) -> None:
        self.model_remove(list(self.model))
        self.cache.clear()

    @rule(seconds=st.sampled_from(STEPS))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds * self.time_scale)

    @rule(offset=st.sampled_from([-0.25, 0.0, 0.0, 0.25]))
    def advance_to_next_expiry(self, offset: float) -> None:
        """Jump to (or next to) the next expiry: the boundary is where bugs hide."""
        upcoming = [e.expires_at for e in self.model.values() if self.now < e.expires_at < math.inf]
        target = min(upcoming) + offset * self.time_scale if upcoming else self.now
        if target > self.now:
            self.clock.now = target

    @rule()
    def purge_expired(self) -> None:
        expired = [k for k, e in self.model.items() if self.now >= e.expires_at]
        for key in expired:
            del self.model[key]
        self.counts["expirations"] += len(expired)
        assert self.cache.purge_expired() == len(expired)

    @rule()
    def reset_stats(self) -> None:
        self.cache.reset_stats()
        self.counts = dict.fromkeys(self.counts, 0)

    @rule(key=keys)
    def has(self, key: str) -> None:
        assert self.cache.has(key) is (key in self.model)

    @rule(key=keys)
    def contains(self, key: str) -> None:
        assert (key in self.cache) is self.live(key)

    @rule(key=keys)
    def ttl_remaining(self, key: str) -> None:
        entry = self.model.get(key)
        expected = entry.expires_at - self.now if entry is not None and self.live(key) else None
        assert self.cache.ttl_remaining(key) == expected

    # -- invariants ----------------------------------------------------------------

    @invariant()
    def stored_keys_match(self) -> None:
        assert sorted(self.cache.keys()) == sorted(self.model)
        assert self.cache.size() == len(self.model) == len(self.cache)

    @invariant()
    def peeks_match(self) -> None:
        for key in KEYS:
            self.has(key)
            self.contains(key)
            self.ttl_remaining(key)

    @invariant()
    def counters_match(self) -> None:
        assert self.cache.stats == CacheStats(**self.counts)

    @invariant()
    def bound_holds(self) -> None:
        if self.max_entries is not None:
            assert self.cache.size() <= self.max_entries


class BoundedCacheModel(CacheModel):
    """The same, with max_entries: expired entries go first, then the least recently used."""

    max_entries = 3


class TinyCacheModel(CacheModel):
    max_entries = 1


SETTINGS = settings(max_examples=200, stateful_step_count=50, deadline=None)

TestCacheModel = CacheModel.TestCase
TestCacheModel.settings = SETTINGS
TestBoundedCacheModel = BoundedCacheModel.TestCase
TestBoundedCacheModel.settings = SETTINGS
TestTinyCacheModel = TinyCacheModel.TestCase
TestTinyCacheModel.settings = settings(max_examples=60, stateful_step_count=50, deadline=None)


def test_the_redis_backend_follows_the_same_model(
    _redis_session_backend: RedisBackend,
) -> None:
    """The unbounded machine again, on a real redis-server (max_entries is memory only)."""
    namespaces = (f"stateful-{n}" for n in itertools.count())

    class RedisCacheModel(CacheModel):
        time_scale = 1000.0  # ttls of 500 s and more: the server's PX never fires
        replacing_expired_counts = False

        def __init__(self) -> None:
            super().__init__()
            self.backend = _redis_session_backend.with_namespace(next(namespaces))
            self.backend.drop_namespace()  # a namespace left by an earlier example
            self.cache.use_backend(self.backend)

        def teardown(self) -> None:
            self.backend.drop_namespace()

    run_state_machine_as_test(
        RedisCacheModel, settings=settings(max_examples=40, stateful_step_count=30, deadline=None)
    )
