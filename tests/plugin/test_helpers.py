"""The assertion helpers inside a real pytest run."""

from __future__ import annotations

import pytest


def test_failure_points_at_the_test_not_the_helper(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import assert_cached

        def test_typo(connection_cache):
            connection_cache.set("user-connections:abc", [1])
            assert_cached("user-connection:abc")
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            '>       assert_cached("user-connection:abc")',
            "E       AssertionError: key 'user-connection:abc' is not cached: it was never set*",
            "E       similar keys:",
            "E         'user-connections:abc' (cached)",
        ]
    )
    result.stdout.no_fnmatch_line("*_assertions.py*")


def test_invalidation_check_in_a_service_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import assert_invalidated

        def update(cache, token):
            cache.invalidate_prefix(f"user-record:{token}:")

        def test_forgot_to_invalidate(connection_cache, frozen_clock):
            connection_cache.set("user-record:abc:1", {}, ttl=120)
            frozen_clock.advance(125)
            assert_invalidated("user-record:abc:1")

        def test_invalidated(connection_cache):
            connection_cache.set("user-record:abc:1", {})
            update(connection_cache, "abc")
            assert_invalidated("user-record:abc:1")
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["E*key 'user-record:abc:1' was not invalidated: it expired 5s ago (ttl 120s)*"]
    )
