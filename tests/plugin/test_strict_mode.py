"""--conncache-strict, the conncache_strict ini option and @pytest.mark.conncache(strict=...)."""

from __future__ import annotations

import pytest

PARITY_TESTS = """
import pytest
from pytest_conncache import ConnectionCache

sessions = ConnectionCache()


def user_connections(connection_cache, token):
    return connection_cache.get_or_set(
        f"user-connections:{token}", lambda: {"ids": (1, 2)}
    )


def test_tuple_comes_back_as_a_list(connection_cache):
    assert user_connections(connection_cache, "abc") == {"ids": (1, 2)}


def test_handler_mutates_a_cached_dict(connection_cache):
    connection_cache.set("user-record:abc:1", {"name": "Ada"})
    record = connection_cache.get("user-record:abc:1")
    record["name"] = "changed by the handler"


def test_json_values_pass(connection_cache):
    connection_cache.set("user-record:abc:2", {"name": "Ada", "roles": ["admin"]})
    assert connection_cache.get("user-record:abc:2")["roles"] == ["admin"]
    sessions.set("session:1", [1, 2, 3])


@pytest.mark.conncache(strict=False)
def test_opted_out(connection_cache):
    connection_cache.set("k", (1, 2))
"""


def test_strict_option_fails_what_redis_would_break(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_parity=PARITY_TESTS)

    result = pytester.runpytest_subprocess("--conncache-strict", "-p", "no:randomly")

    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*_ test_tuple_comes_back_as_a_list _*",
            "key 'user-connections:abc' (dict, * by get_or_set at test_parity.py:8): "
            "would not come back the same from Redis through JSON*: at ?'ids'?: tuple comes "
            "back as list",
            "*store JSON types*or give value_type=*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*_ test_handler_mutates_a_cached_dict _*",
            "key 'user-record:abc:1' (dict): the value stored by set at test_parity.py:18, "
            "handed out by get at test_parity.py:19 was changed in place while the cache "
            "held it*",
            "*copy the value before changing it (copy.deepcopy)*",
        ]
    )


def test_without_the_option_nothing_is_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_parity=PARITY_TESTS)

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=4)


def test_ini_option_turns_it_on_and_the_marker_turns_it_on_per_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        conncache_strict = true
        """
    )
    pytester.makepyfile(test_parity=PARITY_TESTS)

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=2, failed=2)


def test_the_marker_turns_it_on_for_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import datetime
        import pytest

        @pytest.mark.conncache(strict=True)
        def test_strict(connection_cache):
            connection_cache.set("last-sync", datetime.datetime(2026, 1, 1))

        def test_lenient(connection_cache):
            connection_cache.set("last-sync", datetime.datetime(2026, 1, 1))
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["key 'last-sync' (datetime, stored by set at *): cannot be stored on Redis through JSON*"]
    )


def test_the_option_overrides_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        conncache_strict = true
        """
    )
    pytester.makepyfile(test_parity=PARITY_TESTS)

    result = pytester.runpytest_subprocess("--no-conncache-strict")

    result.assert_outcomes(passed=4)


def test_a_failing_strict_test_shows_its_events_too(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_tuple(connection_cache):
            connection_cache.set("point", (1, 2))
        """
    )

    result = pytester.runpytest_subprocess("--conncache-strict")

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- conncache events -*", "*set          'point'  ttl=300s"])
