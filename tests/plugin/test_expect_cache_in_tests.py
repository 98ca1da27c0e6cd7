"""expect_cache in a real test run: what the failure shows."""

from __future__ import annotations

import pytest


def test_a_failed_expectation_lists_the_blocks_events(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import cached, expect_cache

        @cached(key="user-connections:{user_token}")
        def user_connections(user_token: str) -> list:
            return [1, 2]

        def test_second_call_is_a_hit(connection_cache):
            with expect_cache(misses=1, sets=1, hits=1):
                user_connections("abc")
                user_connections("abd")

        def test_passes(connection_cache):
            with expect_cache(misses=1, sets=1, hits=1, cache=connection_cache) as block:
                user_connections("abc")
                user_connections("abc")
            assert [event.kind for event in block.events] == ["miss", "set", "hit"]
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            ">       with expect_cache(misses=1, sets=1, hits=1):",
            "E       AssertionError: expected hits=1, misses=1, sets=1; the block counted "
            "hits=0, misses=2, sets=2",
            "E       events in the block:",
            "E         1. miss 'user-connections:abc'",
            "E         2. set 'user-connections:abc'",
            "E         3. miss 'user-connections:abd'",
            "E         4. set 'user-connections:abd'",
        ]
    )
