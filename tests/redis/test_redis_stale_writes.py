"""No stale writes on Redis: a get_or_set result older than a change is not stored.

Within a process the running flight is marked stale; across processes the
store step compares what the lookup saw and the namespace's invalidation
stamps (``_redis_scripts.STORE_IF_UNCHANGED``). Two caches on one namespace
behave as two processes (they share no flights); the last test runs a real
second process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from typing import Any

import pytest

from pytest_conncache import ConnectionCache, RedisBackend
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer
from tests.threadutil import WAIT_LIMIT, Worker

Cache = ConnectionCache[Any]


def _two_processes(backend: RedisBackend, clock: FakeClock) -> tuple[Cache, Cache]:
    first: Cache = ConnectionCache(120, clock=clock)
    second: Cache = ConnectionCache(120, clock=clock)
    first.use_backend(backend)
    second.use_backend(backend.with_namespace(backend.namespace))
    return first, second


def _fill_while(cache: Cache, change: Callable[[], Any], key: str = "user-record:t:1") -> Any:
    """Run ``cache.get_or_set(key)`` with a factory that waits while ``change`` runs."""
    started, release = threading.Event(), threading.Event()

    def factory() -> str:
        started.set()
        assert release.wait(WAIT_LIMIT)
        return "old value"

    worker = Worker(lambda: cache.get_or_set(key, factory))
    worker.start()
    assert started.wait(WAIT_LIMIT)
    change()
    release.set()
    return worker.finish()


CHANGES = [
    pytest.param(lambda c: c.set("user-record:t:1", "new value"), "new value", id="set"),
    pytest.param(lambda c: c.invalidate("user-record:t:1"), None, id="invalidate-not-stored"),
    pytest.param(lambda c: c.invalidate_many(["user-record:t:1"]), None, id="invalidate_many"),
    pytest.param(lambda c: c.invalidate_prefix("user-record:t:"), None, id="invalidate_prefix"),
    pytest.param(lambda c: c.invalidate_prefix(""), None, id="invalidate_prefix-everything"),
    pytest.param(lambda c: c.invalidate_pattern(":t:"), None, id="invalidate_pattern"),
    pytest.param(lambda c: c.clear(), None, id="clear"),
]


@pytest.mark.parametrize(("change", "left"), CHANGES)
def test_a_change_in_another_process_keeps_the_older_result_out(
    backend: RedisBackend, clock: FakeClock, change: Any, left: Any
) -> None:
    first, second = _two_processes(backend, clock)
    assert _fill_while(first, lambda: change(second)) == "old value"  # the caller still gets it
    assert first.get("user-record:t:1") == left
    assert first.stats.sets == 0


@pytest.mark.parametrize(("change", "left"), CHANGES)
def test_a_change_in_the_same_process_keeps_the_older_result_out(
    cache: Cache, change: Any, left: Any
) -> None:
    assert _fill_while(cache, lambda: change(cache)) == "old value"
    assert cache.get("user-record:t:1") == left


def test_a_change_to_another_key_does_not_keep_the_result_out(
    backend: RedisBackend, clock: FakeClock
) -> None:
    first, second = _two_processes(backend, clock)

    def unrelated() -> None:
        second.set("user-record:u:1", "x")
        second.invalidate("user-record:u:2")
        second.invalidate_prefix("user-record:u:")

    _fill_while(first, unrelated)
    assert first.get("user-record:t:1") == "old value"


def test_a_pattern_or_clear_keeps_every_running_result_out(
    backend: RedisBackend, clock: FakeClock
) -> None:
    # Decision: a pattern cannot be matched against the keys of fills running
    # in other processes (they are not stored yet), so it stops them all; the
    # callers still get their values. invalidate_prefix is exact.
    first, second = _two_processes(backend, clock)
    assert _fill_while(first, lambda: second.invalidate_pattern("^admin:")) == "old value"
    assert first.get("user-record:t:1") is None


def test_replacing_an_expired_entry_stores_the_result(
    backend: RedisBackend, clock: FakeClock
) -> None:
    first, second = _two_processes(backend, clock)
    second.set("user-record:t:1", "expired", ttl=1)
    clock.advance(2)
    assert first.get_or_set("user-record:t:1", lambda: "fresh") == "fresh"
    assert second.get("user-record:t:1") == "fresh"


def test_losing_the_stamps_keeps_running_results_out(
    backend: RedisBackend, clock: FakeClock
) -> None:
    # What an eviction of the stamps hash (allkeys-* policies) looks like.
    first, _ = _two_processes(backend, clock)
    assert backend.client.exists(backend.stamps_key)
    _fill_while(first, lambda: backend.client.delete(backend.stamps_key))
    assert first.get("user-record:t:1") is None
    assert first.get_or_set("user-record:t:1", lambda: "later") == "later"
    assert first.get("user-record:t:1") == "later"


_WORKER = textwrap.dedent(
    """
    import sys, time
    from pytest_conncache import ConnectionCache, RedisBackend

    cache = ConnectionCache(120)
    near = sys.argv[3] == "near"
    cache.use_backend(RedisBackend.from_url(sys.argv[1], namespace=sys.argv[2], near_cache=near))

    def slow_database_read():
        print("reading", flush=True)
        sys.stdin.readline()  # the other process updates meanwhile
        return "version 1"

    print(cache.get_or_set("user-record:t:1", slow_database_read), flush=True)
    """
)


def test_a_fill_in_a_namespace_without_stamps_is_refused_by_their_creation(
    backend: RedisBackend, clock: FakeClock
) -> None:
    first, second = _two_processes(backend, clock)
    backend.client.delete(backend.stamps_key)  # evicted: a lookup sees none
    _fill_while(first, lambda: second.invalidate("user-record:u:1"))
    assert first.get("user-record:t:1") is None  # cannot tell which key changed
    first.get_or_set("user-record:t:1", lambda: "later")  # stores, and stamps again
    assert backend.client.exists(backend.stamps_key)
    _fill_while(first, lambda: second.invalidate("user-record:u:2"), "user-record:t:2")
    assert first.get("user-record:t:2") == "old value"


@pytest.mark.parametrize("copy", ["plain", "near"])
def test_two_real_processes_never_store_a_stale_result(
    redis_server: RedisServer, namespace: str, copy: str
) -> None:
    backend = RedisBackend.from_url(
        redis_server.url, namespace=namespace, near_cache=copy == "near"
    )
    cache: Cache = ConnectionCache(120)
    cache.use_backend(backend)
    try:
        worker = subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_server.url, namespace, copy],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert worker.stdout is not None and worker.stdin is not None
        assert worker.stdout.readline().strip() == "reading"
        # This process updates the record and invalidates it (not stored yet).
        cache.invalidate("user-record:t:1")
        worker.stdin.write("go\n")
        worker.stdin.flush()
        assert worker.stdout.readline().strip() == "version 1"
        assert worker.wait(WAIT_LIMIT) == 0
        worker.stdout.close()
        worker.stdin.close()
        assert cache.get("user-record:t:1") is None
    finally:
        backend.drop_namespace()
        backend.close()
