"""The ``conncache events`` section on a failed test's report."""

from __future__ import annotations

import pytest


def test_a_failed_test_shows_what_the_caches_did_in_order(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import ConnectionCache

        sessions = ConnectionCache(default_ttl=60)

        def load_user(connection_cache, user_id):
            return connection_cache.get_or_set(f"user:{user_id}", lambda: {"id": user_id})

        def test_sign_out_forgets_the_user(connection_cache, frozen_clock):
            load_user(connection_cache, 7)
            frozen_clock.advance(2.5)
            load_user(connection_cache, 7)
            sessions.set("session:7", "token", ttl=30)
            connection_cache.invalidate_prefix("user:")
            frozen_clock.advance(1)
            assert connection_cache.get("user:7") == {"id": 7}

        def test_passes(connection_cache):
            connection_cache.set("k", 1)
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- conncache events -*",
            "6 cache events, times on the frozen clock:",
            "   +0.000s  connection_cache    miss         'user:7'",
            "   +0.000s  connection_cache    set          'user:7'  ttl=300s",
            "   +2.500s  connection_cache    hit          'user:7'",
            "   +2.500s  cache@*  set          'session:7'  ttl=30s",
            "   +2.500s  connection_cache    invalidation 'user:7'  by invalidate_prefix()",
            "   +3.500s  connection_cache    miss         'user:7'",
        ]
    )
    # Only a failed test carries the section.
    assert result.stdout.str().count("conncache events") == 1


def test_only_the_last_events_are_kept_and_the_total_is_said(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_many(connection_cache):
            for n in range(120):
                connection_cache.set(f"k:{n}", n)
            assert connection_cache.get("k:119") == 0
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "the last 50 of 121 cache events, times since the test started:",
            "*set          'k:71'  ttl=300s",
        ]
    )
    result.stdout.no_fnmatch_line("*'k:70'*")


def test_a_failed_test_that_touched_no_cache_has_no_section(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_fails():
            assert 1 == 2
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(failed=1)
    result.stdout.no_fnmatch_line("*conncache events*")


def test_events_of_a_previous_test_do_not_show(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_first(connection_cache):
            connection_cache.set("from-first", 1)

        def test_second(connection_cache):
            connection_cache.get("from-second")
            assert False
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["1 cache events, times since the test started:", "*miss*'from-second'"]
    )
    result.stdout.no_fnmatch_line("*from-first*")
