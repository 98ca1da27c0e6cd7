"""--conncache-backend: the same service tests, the examples' included, on a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.redis_server import RedisServer

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        """
    )
    return pytester


def test_the_examples_pass_on_redis_with_the_same_report(
    pytester: pytest.Pytester, redis_server: RedisServer
) -> None:
    for path in EXAMPLES.glob("*.py"):
        pytester.makepyfile(**{path.stem: path.read_text()})

    memory = pytester.runpytest_subprocess("--conncache-report-json=memory.json")
    on_redis = pytester.runpytest_subprocess(
        f"--conncache-backend={redis_server.url}",
        "--conncache-report",
        "--conncache-report-json=redis.json",
    )

    memory.assert_outcomes(passed=13)
    on_redis.assert_outcomes(passed=13)
    on_redis.stdout.fnmatch_lines(["conncache: connection_cache on redis://127.0.0.1:*"])
    assert json.loads((pytester.path / "redis.json").read_text()) == json.loads(
        (pytester.path / "memory.json").read_text()
    )


def test_each_test_gets_a_fresh_namespace_deleted_after_it(
    pytester: pytest.Pytester, redis_server: RedisServer
) -> None:
    client: redis.Redis = redis.Redis.from_url(redis_server.url)
    client.set(b"someone-elses-key", b"1")
    pytester.makepyfile(
        """
        import pytest_conncache

        def test_first(connection_cache):
            assert connection_cache is pytest_conncache.connection_cache
            assert connection_cache.backend is not None
            connection_cache.set("k", [1])
            assert connection_cache.get("k") == [1]

        def test_second(connection_cache):
            assert connection_cache.keys() == []
            assert connection_cache.get("k") is None
            assert connection_cache.stats.misses == 1
        """
    )

    result = pytester.runpytest_subprocess(f"--conncache-backend={redis_server.url}")

    result.assert_outcomes(passed=2)
    leftover = list(client.scan_iter(match=b"conncache-test-*"))
    assert leftover == []
    assert client.get(b"someone-elses-key") == b"1"
    client.delete(b"someone-elses-key")
    client.close()


def test_isolation_off_keeps_the_namespace_for_the_next_test(
    pytester: pytest.Pytester, redis_server: RedisServer
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_first(connection_cache):
            connection_cache.set("k", 1)

        @pytest.mark.conncache(isolate=False)
        def test_second(connection_cache):
            assert connection_cache.get("k") == 1
        """
    )

    result = pytester.runpytest_subprocess(f"--conncache-backend={redis_server.url}")

    result.assert_outcomes(passed=2)


def test_ini_option_and_xdist(pytester: pytest.Pytester, redis_server: RedisServer) -> None:
    pytester.makeini(
        f"""
        [pytest]
        asyncio_default_fixture_loop_scope = function
        conncache_backend = {redis_server.url}
        """
    )
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.parametrize("n", range(6))
        def test_own_namespace(connection_cache, frozen_clock, n):
            assert connection_cache.size() == 0
            connection_cache.set("shared-key", n, ttl=10)
            frozen_clock.advance(9)
            assert connection_cache.get("shared-key") == n
            frozen_clock.advance(1)
            assert connection_cache.get("shared-key") is None
        """
    )

    result = pytester.runpytest_subprocess("-n", "2")

    result.assert_outcomes(passed=6)


def test_a_bad_url_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_nothing(): pass")

    result = pytester.runpytest_subprocess("--conncache-backend=http://example.invalid")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--conncache-backend: bad URL 'http://example.invalid'*"])


def test_async_tests_on_function_scoped_loops_share_the_backend(
    pytester: pytest.Pytester, redis_server: RedisServer
) -> None:
    # Each test runs on an event loop of its own (pytest-asyncio's default);
    # the backend's asyncio connections follow the loop, so no call meets a
    # connection "attached to a different loop", and none is left unclosed.
    pytester.makepyfile(
        """
        import asyncio

        import pytest

        async def load():
            await asyncio.sleep(0)
            return {"connections": [1, 2]}

        @pytest.mark.asyncio
        @pytest.mark.parametrize("round", range(4))
        async def test_async_calls(connection_cache, round):
            assert await connection_cache.aget_or_set("user-connections:t", load) == {
                "connections": [1, 2]
            }
            await connection_cache.aset("user-record:t:1", round)
            assert await connection_cache.aget("user-record:t:1") == round
            assert await connection_cache.ainvalidate_prefix("user-record:t:") == 1
            assert connection_cache.stats.misses == 1

        def test_a_sync_test_in_between(connection_cache):
            connection_cache.set("k", 1)
            assert connection_cache.get("k") == 1
        """
    )
    result = pytester.runpytest_subprocess(f"--conncache-backend={redis_server.url}", "-W", "error")
    result.assert_outcomes(passed=5)
