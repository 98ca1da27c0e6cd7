"""StrictChecks: values that would not survive Redis, and cached values changed in place."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_conncache import CacheStats, ConnectionCache, RedisBackend, observers
from pytest_conncache._strict import _WATCHES, StrictChecks
from tests.fakes import FakeClock

HERE = os.path.relpath(__file__)


@pytest.fixture
def checks() -> Iterator[StrictChecks]:
    """A StrictChecks observing every cache for the test."""
    strict = StrictChecks()
    observers.register(strict)
    try:
        yield strict
    finally:
        observers.unregister(strict)


@pytest.fixture
def redis_cache(_redis_session_backend: RedisBackend, clock: FakeClock) -> Iterator[Any]:
    """A cache on the session's redis-server, in a namespace of its own."""
    backend = _redis_session_backend.with_namespace(f"strict-{uuid.uuid4().hex[:12]}")
    cache: ConnectionCache[Any] = ConnectionCache(10.0, clock=clock)
    cache.use_backend(backend)
    yield cache
    backend.drop_namespace()
    cache.use_backend(None)


def got(cache: ConnectionCache[Any], key: str) -> Any:
    """``cache.get(key)``, which must find a value."""
    value = cache.get(key)
    assert value is not None
    return value


def line_below() -> int:
    """The line number of the line after the caller's."""
    return sys._getframe(1).f_lineno + 1


@dataclasses.dataclass
class Record:
    id: int
    updated: dt.datetime


# -- what would not come back the same from Redis ----------------------------------------


def test_a_tuple_value_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("user-connections:abc", (1, 2))
    [problem] = checks.problems()
    assert problem.startswith("key 'user-connections:abc' (tuple, stored by set at ")
    assert "would not come back the same from Redis through JSON" in problem
    assert problem.splitlines()[0].endswith(": tuple comes back as list")
    assert "store JSON types" in problem
    assert "value_type=" in problem


def test_int_dict_keys_are_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("k", {1: "first"})
    [problem] = checks.problems()
    assert problem.splitlines()[0].endswith(": key 1 (int) comes back as '1' (str)")


def test_a_datetime_without_value_type_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("last-sync", dt.datetime(2026, 11, 26, 9, 30))
    [problem] = checks.problems()
    assert "key 'last-sync' (datetime, stored by set at" in problem
    assert problem.splitlines()[0].endswith(
        "cannot be stored on Redis through JSON (the Redis store's default serializer): "
        "datetime is not JSON"
    )


def test_a_dataclass_without_value_type_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("user-record:abc:1", Record(1, dt.datetime(2026, 11, 26)))
    [problem] = checks.problems()
    assert problem.splitlines()[0].endswith(": Record is not JSON")


def test_a_datetime_with_the_caches_value_type_passes(
    checks: StrictChecks, clock: FakeClock
) -> None:
    typed: ConnectionCache[dt.datetime] = ConnectionCache(10, clock=clock, value_type=dt.datetime)
    typed.set("last-sync", dt.datetime(2026, 11, 26, 9, 30))
    assert checks.problems() == []


def test_a_dataclass_with_the_caches_value_type_passes(
    checks: StrictChecks, clock: FakeClock
) -> None:
    records: ConnectionCache[Record] = ConnectionCache(10, clock=clock, value_type=Record)
    records.set("user-record:abc:1", Record(1, dt.datetime(2026, 11, 26)))
    assert checks.problems() == []


def test_a_value_type_given_to_the_call_is_used(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("last-sync", dt.datetime(2026, 11, 26), value_type=dt.datetime)
    memory_cache.get_or_set("pair", lambda: (1, 2), value_type=tuple[int, int])
    assert checks.problems() == []


def test_a_value_not_of_its_value_type_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("ids", (1, 2), value_type=list[int])
    [problem] = checks.problems()
    assert "cannot be stored on Redis through the codec of value_type=list[int]" in problem
    assert "store values of value_type=list[int]" in problem


def test_a_cached_functions_return_annotation_is_used(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    @memory_cache.cached(key="pair:{n}")
    def pair(n: int) -> tuple[int, int]:
        return (n, n)

    pair(1)
    assert checks.problems() == []


def test_a_cached_function_is_named_in_the_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    @memory_cache.cached(key="pair:{n}")
    def pair(n: int):  # type: ignore[no-untyped-def]
        return (n, n)

    line = line_below()
    pair(1)
    [problem] = checks.problems()
    assert "handed out by get_or_set through @cached" in problem
    assert f"pair at {HERE}:{line})" in problem


def test_json_values_pass(checks: StrictChecks, memory_cache: ConnectionCache[Any]) -> None:
    memory_cache.set(
        "k", {"a": [1, 2.5, "x", True, None, {"b": []}], "nan": float("nan"), "é": "ü"}
    )
    memory_cache.set("n", None)
    memory_cache.set("s", "text")
    assert checks.problems() == []


def test_the_problem_names_the_path_of_a_nested_difference(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("k", {"users": [{"id": 1}, {"id": 2, "roles": ("admin",)}]})
    [problem] = checks.problems()
    assert problem.splitlines()[0].endswith(": at ['users'][1]['roles']: tuple comes back as list")


def test_the_problem_names_the_path_of_a_value_json_cannot_hold(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("k", {"sync": [{"at": dt.date(2026, 11, 26)}]})
    [problem] = checks.problems()
    assert problem.splitlines()[0].endswith(": at ['sync'][0]['at']: date is not JSON")


def test_the_call_site_points_at_the_test_file(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    line = line_below()
    memory_cache.set("k", (1,))
    [problem] = checks.problems()
    assert f"stored by set at {HERE}:{line})" in problem


def test_the_call_site_of_get_or_set_points_at_the_test_file(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    line = line_below()
    memory_cache.get_or_set("k", lambda: (1,))
    [problem] = checks.problems()
    assert f"(tuple, handed out by get_or_set at {HERE}:{line})" in problem


@pytest.mark.asyncio
async def test_the_call_site_of_aget_or_set_points_at_the_test_file(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    async def load() -> tuple[int]:
        await asyncio.sleep(0)
        return (1,)

    line = line_below()
    await memory_cache.aget_or_set("k", load)
    [problem] = checks.problems()
    assert f"(tuple, handed out by aget_or_set at {HERE}:{line})" in problem


def test_each_key_is_reported_once(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    for _ in range(3):
        memory_cache.set("a", (1,))
    memory_cache.set("b", (2,))
    problems = checks.problems()
    assert [problem.split(" ")[1] for problem in problems] == ["'a'", "'b'"]


def test_a_redis_backed_cache_is_checked_through_its_serializer(
    checks: StrictChecks, redis_cache: Any
) -> None:
    # Never read back in the test, the tuple would still come back a list.
    redis_cache.set("k", (1, 2))
    [problem] = checks.problems()
    assert problem.startswith("key 'k' (tuple, stored by set at ")
    assert "tuple comes back as list" in problem


def test_a_plain_redis_read_may_be_changed_freely(checks: StrictChecks, redis_cache: Any) -> None:
    value = redis_cache.get_or_set("v", lambda: [1])
    value.append(2)  # a fresh copy per read: nobody else sees it
    again = redis_cache.get("v")
    again.append(3)
    assert checks.problems() == []


# -- values changed in place ---------------------------------------------------------------


def test_a_value_mutated_after_get_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("user-connections:abc", [1, 2])
    line = line_below()
    connections: Any = memory_cache.get("user-connections:abc")
    connections.append(3)
    [problem] = checks.problems()
    assert problem.startswith("key 'user-connections:abc' (list): the value stored by set at ")
    assert f"handed out by get at {HERE}:{line} was changed in place" in problem
    assert "copy.deepcopy" in problem


def test_a_get_or_set_result_mutated_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    line = line_below()
    record = memory_cache.get_or_set("user-record:abc:1", lambda: {"name": "Ada"})
    record["name"] = "Grace"
    [problem] = checks.problems()
    assert problem.startswith(
        f"key 'user-record:abc:1' (dict): the value handed out by get_or_set at {HERE}:{line} "
        "was changed in place"
    )


@pytest.mark.asyncio
async def test_an_aget_or_set_result_mutated_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    async def load() -> list[int]:
        await asyncio.sleep(0)
        return [1]

    line = line_below()
    connections = await memory_cache.aget_or_set("user-connections:abc", load)
    connections.append(2)
    [problem] = checks.problems()
    assert problem.startswith(
        f"key 'user-connections:abc' (list): the value handed out by aget_or_set at "
        f"{HERE}:{line} was changed in place"
    )


def test_a_value_stored_before_the_checks_is_watched_from_its_first_get(
    memory_cache: ConnectionCache[Any],
) -> None:
    memory_cache.set("k", [1])
    strict = StrictChecks()
    observers.register(strict)
    try:
        line = line_below()
        value: Any = memory_cache.get("k")
        value.append(2)
    finally:
        observers.unregister(strict)
    [problem] = strict.problems()
    assert f"the value handed out by get at {HERE}:{line} was changed in place" in problem


def test_a_value_json_cannot_hold_mutated_is_a_problem(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("ids", {1, 2}, value_type=set[int])
    got(memory_cache, "ids").add(3)
    [problem] = checks.problems()
    assert "key 'ids' (set): the value stored by set at " in problem


def test_an_unmutated_value_passes(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("k", {"a": [1]})
    assert memory_cache.get("k") == {"a": [1]}
    assert memory_cache.get_or_set("k", dict) == {"a": [1]}
    assert checks.problems() == []


def test_a_changed_value_set_again_passes(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("k", {"a": [1]})
    value = got(memory_cache, "k")
    value["a"].append(2)
    memory_cache.set("k", value)
    assert checks.problems() == []


def test_a_mutated_value_the_cache_no_longer_holds_is_not_reported(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("k", [1])
    value = got(memory_cache, "k")
    memory_cache.set("k", [9])
    value.append(2)
    assert checks.problems() == []


def test_a_mutation_is_reported_once_per_key(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("k", [1])
    for _ in range(5):
        got(memory_cache, "k").append(2)
    assert len(checks.problems()) == 1
    assert len(checks.problems()) == 1


def test_values_the_cache_no_longer_holds_are_let_go(
    checks: StrictChecks, clock: FakeClock
) -> None:
    bounded: ConnectionCache[Any] = ConnectionCache(10, clock=clock, max_entries=10)
    for i in range(3 * _WATCHES):
        bounded.set(f"k{i}", [i])
    assert len(checks._watches) <= _WATCHES + 10  # the values evicted are not kept alive
    got(bounded, f"k{3 * _WATCHES - 1}").append(0)
    assert len(checks.problems()) == 1


# -- the checks themselves -------------------------------------------------------------------


def test_the_checks_change_no_counter(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    memory_cache.set("a", (1,))
    memory_cache.get("a")
    memory_cache.get("b")
    memory_cache.get_or_set("c", lambda: [1])
    checks.problems()
    assert memory_cache.stats == CacheStats(hits=1, misses=2, sets=2)


def test_a_failure_inside_a_check_is_recorded_not_raised(
    checks: StrictChecks, memory_cache: ConnectionCache[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(key: str) -> None:
        raise RuntimeError("peek failed")

    monkeypatch.setattr(memory_cache, "peek_entry", broken)
    memory_cache.set("k", [1])
    assert memory_cache.get("k") == [1]
    assert checks.problems() == [
        "key 'k': the strict checks could not check its value (RuntimeError: peek failed)"
    ]


def test_threads_storing_and_reading_at_once(
    checks: StrictChecks, memory_cache: ConnectionCache[Any]
) -> None:
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        barrier.wait()
        for i in range(50):
            memory_cache.set(f"t{n}", (n, i))  # a problem, reported once per key
            memory_cache.set(f"j{n}:{i}", [n, i])  # fine
            memory_cache.get(f"j{n}:{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    problems = checks.problems()
    assert sorted(problem.split(" ")[1] for problem in problems) == [f"'t{n}'" for n in range(8)]
    assert all("tuple comes back as list" in problem for problem in problems)


def test_a_value_changed_after_a_near_cache_hit_is_a_problem(
    checks: StrictChecks, redis_server: Any
) -> None:
    backend = RedisBackend.from_url(
        redis_server.url, namespace=f"strict-{uuid.uuid4().hex[:12]}", near_cache=True
    )
    cache: ConnectionCache[Any] = ConnectionCache(60)
    cache.use_backend(backend)
    try:
        cache.set("user-record:abc:1", {"name": "Ada"})
        before = cache.stats.near_hits
        record: Any = None
        for _ in range(200):  # until the copy answers
            record = cache.get("user-record:abc:1")
            if cache.stats.near_hits > before:
                break
            time.sleep(0.005)
        assert cache.stats.near_hits > before
        record["seen"] = 3  # every later reader in this process gets it

        [problem] = checks.problems()
        assert problem.startswith("key 'user-record:abc:1' (dict): the value ")
        assert "A near cache hands that same object to every reader in this process" in problem
    finally:
        cache.use_backend(None)
        backend.drop_namespace()
        backend.close()
