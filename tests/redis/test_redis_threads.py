"""Many threads on one Redis-backed cache: no exception, counters that add up."""

from __future__ import annotations

import random
import threading
from typing import Any

from pytest_conncache import ConnectionCache

Cache = ConnectionCache[Any]


def test_threads_mixing_every_call_keep_counters_consistent(cache: Cache) -> None:
    lookups = [0] * 6
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        rng = random.Random(n)
        try:
            for _ in range(150):
                key = f"user-record:t{rng.randrange(3)}:{rng.randrange(5)}"
                op = rng.randrange(6)
                if op == 0:
                    cache.get(key)
                    lookups[n] += 1
                elif op == 1:
                    cache.get_or_set(key, lambda: [1, 2])
                    lookups[n] += 1
                elif op == 2:
                    cache.set(key, {"n": n})
                elif op == 3:
                    cache.invalidate_prefix(f"user-record:t{rng.randrange(3)}:")
                elif op == 4:
                    cache.invalidate_pattern(r":\d$" if rng.random() < 0.1 else "^x")
                else:
                    cache.keys()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    stats = cache.stats
    assert stats.hits + stats.misses == sum(lookups)
    assert stats.errors == 0
