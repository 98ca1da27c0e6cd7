"""--conncache-backend: the same service tests, the examples' included, on a real Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from tests.redis_server import RedisServer, command

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


@pytest.mark.parametrize("options", ["", "?near_cache=1"], ids=["plain", "near-cache"])
def test_the_examples_pass_on_redis_with_the_same_report(
    pytester: pytest.Pytester, redis_server: RedisServer, options: str
) -> None:
    for path in EXAMPLES.glob("*.py"):
        pytester.makepyfile(**{path.stem: path.read_text()})

    memory = pytester.runpytest_subprocess("--conncache-report-json=memory.json")
    on_redis = pytester.runpytest_subprocess(
        f"--conncache-backend={redis_server.url}{options}",
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


def test_a_server_that_does_not_answer_is_a_one_line_usage_error(
    pytester: pytest.Pytester, own_redis_server: RedisServer
) -> None:
    url = own_redis_server.url
    own_redis_server.stop()
    pytester.makepyfile("def test_nothing(connection_cache): pass")

    result = pytester.runpytest_subprocess(f"--conncache-backend={url}")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [f"ERROR: --conncache-backend={url}: Redis does not answer (*); start it, or run without*"]
    )
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    result.stdout.no_fnmatch_line("*passed*")


def test_a_namespace_that_could_not_be_dropped_is_never_reused(
    pytester: pytest.Pytester, own_redis_server: RedisServer
) -> None:
    # The server refuses the plugin's drop after the first test (its default
    # user may only PING); the second test must get a namespace of its own,
    # and the run ends by naming the one left behind.
    admin: redis.Redis = redis.Redis.from_url(own_redis_server.url)
    command(admin, "ACL", "SETUSER", "admin", "on", ">secret", "~*", "&*", "+@all")
    admin_url = own_redis_server.url.replace("redis://", "redis://admin:secret@")
    pytester.makepyfile(
        f"""
        import redis

        admin = redis.Redis.from_url({admin_url!r})
        seen = []

        def test_first(connection_cache):
            seen.append(connection_cache.backend.namespace)
            connection_cache.set("left-behind", 1)

        def refuse_writes():
            admin.execute_command("ACL", "SETUSER", "default", "-@all", "+ping", "+hello")

        def allow_writes():
            admin.execute_command("ACL", "SETUSER", "default", "+@all")

        def test_second(connection_cache):
            assert connection_cache.backend.namespace != seen[0]
            assert connection_cache.get("left-behind") is None
            connection_cache.set("fresh", 2)
            assert connection_cache.keys() == ["fresh"]
        """
    )
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_teardown(item):
            # Around the plugin's drop of the test's namespace, which runs
            # after every fixture finalizer.
            if item.name != "test_first":
                return (yield)
            item.module.refuse_writes()
            try:
                return (yield)
            finally:
                item.module.allow_writes()
        """
    )

    result = pytester.runpytest_subprocess(
        f"--conncache-backend={own_redis_server.url}", "-p", "no:randomly"
    )

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "conncache: 1 test namespace(s) could not be dropped and stay on "
            f"{own_redis_server.url}: conncache-test-*-1"
        ]
    )
    left = [key.decode() for key in admin.scan_iter(match="conncache-test-*")]
    assert any(key.endswith("-1:left-behind") for key in left), left
    admin.close()


def test_moving_the_singleton_off_the_test_namespace_warns_and_is_undone(
    pytester: pytest.Pytester, redis_server: RedisServer
) -> None:
    pytester.makepyfile(
        f"""
        from pytest_conncache import RedisBackend, connection_cache

        def start_app():
            connection_cache.use_backend(
                RedisBackend.from_url({redis_server.url!r}, namespace="myapp-guard-test")
            )

        def test_app_moves_it(connection_cache):
            start_app()
            connection_cache.set("user:1", "app data")

        def test_back_on_a_test_namespace(connection_cache):
            assert connection_cache.backend.namespace.startswith("conncache-test-")
            assert connection_cache.get("user:1") is None
        """
    )

    result = pytester.runpytest_subprocess(
        f"--conncache-backend={redis_server.url}", "-p", "no:randomly"
    )

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*.py:4: ConncacheWarning: connection_cache.use_backend() moved the shared cache to "
            "*myapp-guard-test* during *test_app_moves_it*The plugin put it back on the "
            "test's own namespace*skip the app's use_backend() call in tests*"
        ]
    )
    client: redis.Redis = redis.Redis.from_url(redis_server.url)
    client.delete(*client.keys("myapp-guard-test*"))
    client.close()


def test_a_password_in_the_url_is_never_printed(
    pytester: pytest.Pytester, own_redis_server: RedisServer
) -> None:
    admin: redis.Redis = redis.Redis.from_url(own_redis_server.url)
    command(admin, "ACL", "SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all")
    admin.close()
    good = own_redis_server.url.replace("redis://", "redis://app:s3cret@")
    bad = own_redis_server.url.replace("redis://", "redis://app:wrong@")
    pytester.makepyfile("def test_nothing(connection_cache): pass")

    ran = pytester.runpytest_subprocess(f"--conncache-backend={good}")
    refused = pytester.runpytest_subprocess(f"--conncache-backend={bad}")

    ran.assert_outcomes(passed=1)
    ran.stdout.fnmatch_lines(["conncache: connection_cache on redis://app:***@127.0.0.1:*"])
    assert refused.ret == pytest.ExitCode.USAGE_ERROR
    refused.stderr.fnmatch_lines(
        ["ERROR: --conncache-backend=redis://app:***@*: Redis refused the credentials*"]
    )
    for result in (ran, refused):
        assert "s3cret" not in result.stdout.str() + result.stderr.str()
        assert "wrong" not in result.stdout.str() + result.stderr.str()


def test_the_guard_leaves_nothing_behind_on_the_server(
    pytester: pytest.Pytester, redis_server: RedisServer
) -> None:
    pytester.makepyfile(
        f"""
        from pytest_conncache import RedisBackend, connection_cache

        def test_app_moves_it(connection_cache):
            connection_cache.use_backend(
                RedisBackend.from_url({redis_server.url!r}, namespace="myapp-leftover-test")
            )

        def test_next(connection_cache):
            assert connection_cache.backend.namespace.startswith("conncache-test-")
        """
    )

    result = pytester.runpytest_subprocess(
        f"--conncache-backend={redis_server.url}", "-p", "no:randomly"
    )

    result.assert_outcomes(passed=2, warnings=1)
    client: redis.Redis = redis.Redis.from_url(redis_server.url)
    assert list(client.scan_iter(match="conncache-test-*")) == []
    client.delete(*client.keys("myapp-leftover-test*") or ["none"])
    client.close()
