"""Many threads mixing every method: no exception, no corruption, counters that add up."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_conncache import ConnectionCache
from tests.fakes import FakeClock

THREADS = 6
ITERATIONS = 3000
TOKENS = ["a", "b", "c", "d"]


@pytest.fixture(autouse=True)
def frequent_switches() -> Iterator[None]:
    """Make the interpreter switch threads often, so operations interleave more."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def random_key(rng: random.Random) -> str:
    kind = rng.randrange(3)
    token = rng.choice(TOKENS)
    if kind == 0:
        return f"user-connections:{token}"
    if kind == 1:
        return f"user-record:{token}:{rng.randrange(20)}"
    return f"connection:{rng.randrange(20)}"


class Hammer(threading.Thread):
    def __init__(
        self, cache: ConnectionCache[Any], clock: FakeClock, seed: int, start: threading.Barrier
    ) -> None:
        super().__init__(daemon=True)
        self.cache = cache
        self.clock = clock
        self.rng = random.Random(seed)
        self.start_together = start
        self.lookups = 0
        self.set_calls = 0
        self.get_or_set_calls = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.start_together.wait()
            for _ in range(ITERATIONS):
                self.step()
        except BaseException as error:  # reported by the test
            self.error = error

    def step(self) -> None:
        cache, rng = self.cache, self.rng
        op = rng.randrange(100)
        key = random_key(rng)
        if op < 30:
            cache.get(key)
            self.lookups += 1
        elif op < 50:
            cache.set(key, rng.random(), ttl=rng.choice([0.5, 1, 5, None]))
            self.set_calls += 1
        elif op < 70:
            value = cache.get_or_set(key, lambda: key.upper(), ttl=rng.choice([0.5, 2, None]))
            assert isinstance(value, (str, float))
            self.lookups += 1
            self.get_or_set_calls += 1
        elif op < 75:
            cache.invalidate(key)
        elif op < 80:
            cache.invalidate_pattern(rf":{rng.choice(TOKENS)}(:|$)")
        elif op < 85:
            cache.invalidate_prefix(f"user-record:{rng.choice(TOKENS)}:")
        elif op < 90:
            keys = cache.keys()
            assert all(isinstance(k, str) for k in keys)
            _ = key in cache, cache.has(key), cache.ttl_remaining(key), cache.size()
        elif op < 93:
            cache.purge_expired()
        elif op < 95:
            cache.clear()
        elif op < 97:
            _ = cache.stats
        else:
            self.clock.advance(0.25)


def hammer(cache: ConnectionCache[Any], clock: FakeClock) -> list[Hammer]:
    start = threading.Barrier(THREADS)
    threads = [Hammer(cache, clock, seed, start) for seed in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
        assert not thread.is_alive(), "a worker thread hung"
    errors = [t.error for t in threads if t.error is not None]
    assert errors == []
    return threads


@pytest.fixture(params=[None, 8, 1], ids=["unbounded", "max_entries=8", "max_entries=1"])
def shared(request: pytest.FixtureRequest, clock: FakeClock) -> ConnectionCache[Any]:
    return ConnectionCache(2, clock=clock, max_entries=request.param)


def test_no_thread_raises(shared: ConnectionCache[Any], clock: FakeClock) -> None:
    hammer(shared, clock)


def test_hits_plus_misses_equal_lookups(shared: ConnectionCache[Any], clock: FakeClock) -> None:
    threads = hammer(shared, clock)
    stats = shared.stats
    assert stats.hits + stats.misses == sum(t.lookups for t in threads)


def test_sets_are_all_counted(shared: ConnectionCache[Any], clock: FakeClock) -> None:
    threads = hammer(shared, clock)
    set_calls = sum(t.set_calls for t in threads)
    # get_or_set stores at most once per call (never when its key changed meanwhile).
    assert set_calls <= shared.stats.sets <= set_calls + sum(t.get_or_set_calls for t in threads)


def test_bound_holds_after_concurrent_use(shared: ConnectionCache[Any], clock: FakeClock) -> None:
    hammer(shared, clock)
    if shared.max_entries is not None:
        assert shared.size() <= shared.max_entries


def test_prefix_index_agrees_with_the_entries(
    shared: ConnectionCache[Any], clock: FakeClock
) -> None:
    hammer(shared, clock)
    stored = shared.keys()
    assert len(set(stored)) == len(stored) == shared.size()
    for token in TOKENS:
        expected = sum(1 for k in stored if k.startswith(f"user-record:{token}:"))
        assert shared.invalidate_prefix(f"user-record:{token}:") == expected
    remaining = shared.size()
    assert remaining == sum(1 for k in stored if not k.startswith("user-record:"))
    assert shared.invalidate_prefix("") == remaining
    assert shared.size() == 0


def test_every_removal_is_counted(shared: ConnectionCache[Any], clock: FakeClock) -> None:
    # Each stored key left by exactly one counted removal, or is still stored. Replacing
    # sets do not add keys, so removals + size can only be at most the number of sets.
    hammer(shared, clock)
    stats = shared.stats
    removed = stats.invalidations + stats.expirations + stats.evictions
    assert removed + shared.size() <= stats.sets
    shared.clear()
    stats = shared.stats
    assert stats.invalidations + stats.expirations + stats.evictions <= stats.sets


def test_concurrent_get_or_set_of_one_key_calls_the_factory_rarely(clock: FakeClock) -> None:
    cache: ConnectionCache[int] = ConnectionCache(clock=clock)
    calls: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(THREADS)

    def factory() -> int:
        with lock:
            calls.append(1)
        return 7

    def worker() -> None:
        start.wait()
        for _ in range(500):
            assert cache.get_or_set("only", factory) == 7

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert calls == [1]  # the value never expires or goes away, so one call serves all
    assert cache.stats.hits + cache.stats.misses == THREADS * 500
    assert cache.stats.misses == 1
