"""frozen_clock refuses freezegun in the same test, with one message that says what to do."""

from __future__ import annotations

import pytest

ADVICE = (
    "frozen_clock cannot run together with freezegun: {how}*"
    "Use frozen_clock alone in this test*or time-machine's time_machine fixture*"
)


def test_freeze_time_decorator_fails_the_test_at_setup(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from freezegun import freeze_time
        from pytest_conncache import assert_not_cached

        @freeze_time("2030-01-01")
        def test_both(connection_cache, frozen_clock):
            connection_cache.set("k", 1, ttl=300)
            frozen_clock.advance(600)
            assert_not_cached("k")
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at setup of test_both*",
            ADVICE.format(how="the test is decorated with freezegun's @freeze_time(...)"),
        ]
    )
    result.stdout.no_fnmatch_line("*still cached*")


@pytest.mark.parametrize(
    "fixtures", ["freezer, frozen_clock", "frozen_clock, freezer"], ids=["freezer-first", "last"]
)
def test_freezer_fixture_fails_the_test_at_setup(pytester: pytest.Pytester, fixtures: str) -> None:
    pytester.makepyfile(
        f"""
        def test_both({fixtures}):
            frozen_clock.advance(600)
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_both*", ADVICE.format(how="*freezer*")])
    result.stdout.no_fnmatch_line("*cannot start when freezegun is active*")


def test_freeze_time_marker_of_pytest_freezer_fails_the_test_at_setup(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.freeze_time("2030-01-01")
        def test_both(frozen_clock):
            frozen_clock.advance(600)
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*ERROR at setup of test_both*", ADVICE.format(how="*freezer*")])


def test_freeze_time_block_inside_the_test_stops_advance(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from freezegun import freeze_time

        def test_block(frozen_clock):
            with freeze_time("2030-01-01"):
                with pytest.raises(RuntimeError, match="cannot run together with freezegun"):
                    frozen_clock.advance(600)
            frozen_clock.advance(600)
        """
    )

    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_freezegun_imported_but_unused_changes_nothing(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        import freezegun

        def test_frozen(frozen_clock):
            before = time.time()
            frozen_clock.advance(600)
            assert time.time() == before + 600

        @freezegun.freeze_time("2030-01-01")
        def test_freezegun_alone():
            assert time.strftime("%Y", time.gmtime()) == "2030"
        """
    )

    pytester.runpytest_subprocess().assert_outcomes(passed=2)


def test_frozen_clock_never_imports_freezegun(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import sys
        import time

        def test_frozen(frozen_clock):
            before = time.time()
            frozen_clock.advance(600)
            assert time.time() == before + 600
            assert "freezegun" not in sys.modules
        """
    )

    # pytest-freezer, when installed, imports freezegun as it loads.
    pytester.runpytest_subprocess("-p", "no:freezer").assert_outcomes(passed=1)
