"""Outages of a real redis-server: reads fail open, invalidations fail loud."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pytest_conncache import ConnectionCache, RedisBackend
from pytest_conncache._redis import Outage
from tests.redis.fakes import FakeClock
from tests.redis_server import RedisServer

Cache = ConnectionCache[Any]


@pytest.fixture
def outage_backend(own_redis_server: RedisServer) -> Iterator[RedisBackend]:
    backend = RedisBackend.from_url(own_redis_server.url, namespace="svc")
    yield backend
    backend.client.close()


@pytest.fixture
def outage_cache(outage_backend: RedisBackend, clock: FakeClock) -> Cache:
    cache: Cache = ConnectionCache(60, clock=clock)
    cache.use_backend(outage_backend)
    return cache


def _unreachable_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.WARNING and "unreachable" in record.getMessage()
    ]


def test_reads_fail_open_count_errors_and_warn_once(
    own_redis_server: RedisServer, outage_cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    outage_cache.set("k", "before")
    own_redis_server.stop()
    caplog.set_level(logging.WARNING, logger="pytest_conncache.redis")

    assert outage_cache.get("k", "default") == "default"
    assert outage_cache.get_or_set("k", lambda: "computed") == "computed"
    outage_cache.set("k2", "lost")

    stats = outage_cache.stats
    # get, get_or_set's lookup, set: a get_or_set whose lookup failed does not
    # store (it cannot tell whether another process changed the key meanwhile).
    assert stats.errors == 3
    assert (stats.hits, stats.misses, stats.sets) == (0, 2, 1)
    assert len(_unreachable_warnings(caplog)) == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda cache: cache.invalidate("k"),
        lambda cache: cache.invalidate_pattern("k"),
        lambda cache: cache.invalidate_prefix("k"),
        lambda cache: cache.clear(),
    ],
    ids=["invalidate", "invalidate_pattern", "invalidate_prefix", "clear"],
)
def test_invalidations_fail_loud(
    own_redis_server: RedisServer, outage_cache: Cache, call: Any
) -> None:
    outage_cache.set("k", 1)
    own_redis_server.stop()
    with pytest.raises(redis.ConnectionError):
        call(outage_cache)
    assert outage_cache.stats.invalidations == 0


def test_invalidations_can_be_made_to_fail_open(
    own_redis_server: RedisServer, clock: FakeClock
) -> None:
    backend = RedisBackend.from_url(
        own_redis_server.url, namespace="svc", fail_open_invalidations=True
    )
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)
    own_redis_server.stop()
    try:
        assert cache.invalidate("k") is False
        assert cache.invalidate_prefix("k") == 0
        assert cache.stats.errors == 2
    finally:
        backend.client.close()


def test_reads_can_be_made_to_fail_loud(own_redis_server: RedisServer, clock: FakeClock) -> None:
    backend = RedisBackend.from_url(own_redis_server.url, namespace="svc", fail_open_reads=False)
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)
    own_redis_server.stop()
    try:
        with pytest.raises(redis.ConnectionError):
            cache.get("k")
        with pytest.raises(redis.ConnectionError):
            cache.get_or_set("k", lambda: 1)
    finally:
        backend.client.close()


def test_after_a_restart_everything_works_and_nothing_stale_is_served(
    own_redis_server: RedisServer,
    outage_cache: Cache,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pytest_conncache._redis.Outage.PROBE_EVERY", 0.0)  # no fast failing
    outage_cache.set("user-record:t1:1", "v1")
    own_redis_server.stop()
    # The service keeps serving from its source of truth during the outage.
    assert outage_cache.get_or_set("user-record:t1:1", lambda: "v2") == "v2"
    with pytest.raises(redis.ConnectionError):
        outage_cache.invalidate_prefix("user-record:t1:")
    own_redis_server.start()
    caplog.set_level(logging.WARNING, logger="pytest_conncache.redis")

    # Neither the pre-outage v1 nor anything half-written comes back.
    assert outage_cache.get("user-record:t1:1") is None
    assert outage_cache.get_or_set("user-record:t1:1", lambda: "v3") == "v3"
    assert outage_cache.get("user-record:t1:1") == "v3"
    assert outage_cache.invalidate_prefix("user-record:t1:") == 1
    errors = outage_cache.stats.errors
    outage_cache.set("k", 1)
    assert outage_cache.stats.errors == errors
    assert any("answers again" in record.getMessage() for record in caplog.records)


def test_a_second_outage_warns_again(
    own_redis_server: RedisServer,
    outage_cache: Cache,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fault within a few seconds of recovering counts as the same outage
    # (a restart flaps); this test's second outage comes sooner than that.
    monkeypatch.setattr("pytest_conncache._redis.Outage.PROBE_EVERY", 0.0)
    caplog.set_level(logging.WARNING, logger="pytest_conncache.redis")
    own_redis_server.stop()
    outage_cache.get("k")
    outage_cache.get("k")
    own_redis_server.start()
    outage_cache.get("k")
    own_redis_server.stop()
    outage_cache.get("k")
    assert len(_unreachable_warnings(caplog)) == 2


def test_a_restart_that_flaps_warns_once_each_way(
    own_redis_server: RedisServer, outage_cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="pytest_conncache.redis")
    for _ in range(3):
        own_redis_server.stop()
        outage_cache.get("k")
        own_redis_server.start()
        outage_cache.get("k")
    assert not any(_recoveries(caplog))  # each call came right after a fault: a flap
    time.sleep(Outage.PROBE_EVERY)
    outage_cache.get("k")  # a probe, a second after the last fault
    assert len(_unreachable_warnings(caplog)) == 1
    assert len(_recoveries(caplog)) == 1


def test_reads_during_an_outage_fail_at_once_and_probe_every_second(
    own_redis_server: RedisServer, outage_cache: Cache
) -> None:
    assert own_redis_server.process is not None
    own_redis_server.process.send_signal(signal.SIGSTOP)  # answers nothing: a timeout
    try:
        started = time.monotonic()
        assert outage_cache.get("k", "d") == "d"  # waits for the socket timeout (1 s)
        first = time.monotonic() - started
        started = time.monotonic()
        for _ in range(20):
            assert outage_cache.get_or_set("k", lambda: "computed") == "computed"
        rest = time.monotonic() - started
    finally:
        own_redis_server.process.send_signal(signal.SIGCONT)
    assert 0.9 < first < 1.9  # one timeout, not a timeout and a retry
    assert rest < 0.5  # the circuit is open: no call waits
    assert outage_cache.stats.errors == 21
    time.sleep(Outage.PROBE_EVERY)
    outage_cache.set("k", "after")
    assert outage_cache.get("k") == "after"


def test_invalidations_during_an_outage_still_try_the_server(
    own_redis_server: RedisServer, outage_cache: Cache
) -> None:
    outage_cache.set("k", 1)
    own_redis_server.stop()
    outage_cache.get("k")  # opens the circuit for reads
    own_redis_server.start()
    assert outage_cache.invalidate("k") is False  # reached the (empty, restarted) server


def _recoveries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
        and r.getMessage().startswith("Redis at")
        and r.getMessage().endswith(" answers again")
    ]


def _time_out(*args: Any, **kwargs: Any) -> Any:
    raise redis.TimeoutError("Timeout reading from socket")


class _TimingOutPool:
    connection_kwargs: dict[str, Any] = {}


class _TimingOutClient:
    """Just enough of a redis.Redis to build a backend whose every command times out."""

    connection_pool = _TimingOutPool()
    execute_command = staticmethod(_time_out)


def test_a_timeout_is_a_fault_like_a_refused_connection(clock: FakeClock) -> None:
    backend = RedisBackend(_TimingOutClient(), namespace="svc")  # type: ignore[arg-type]
    cache: Cache = ConnectionCache(clock=clock)
    cache.use_backend(backend)
    assert cache.get_or_set("k", lambda: 7) == 7
    assert cache.stats.errors == 1  # the lookup; nothing is stored after it failed
    with pytest.raises(redis.TimeoutError):
        cache.invalidate("k")


@pytest.mark.asyncio
async def test_aget_or_set_keeps_the_event_loop_running_while_redis_hangs(
    own_redis_server: RedisServer, outage_cache: Cache
) -> None:
    # A stopped (SIGSTOP) server accepts nothing and answers nothing: every
    # round trip waits for the socket timeout (1 s from from_url).
    assert own_redis_server.process is not None
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    async def compute() -> str:
        return "computed"

    ticking = asyncio.create_task(ticker())
    own_redis_server.process.send_signal(signal.SIGSTOP)
    try:
        value = await outage_cache.aget_or_set("k", compute)
    finally:
        own_redis_server.process.send_signal(signal.SIGCONT)
        ticking.cancel()
    assert value == "computed"  # read failed open, the factory ran
    assert outage_cache.stats.errors >= 1
    # The lookup alone waited about a second; a blocked loop would not tick.
    assert ticks >= 20
