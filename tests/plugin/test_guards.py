"""Guards: what a test moves (the shared cache's backend, the default clock) is put back."""

from __future__ import annotations

import pytest


def test_moving_the_singleton_in_a_test_warns_at_the_call_and_is_undone(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        test_app="""
        from pytest_conncache import ConnectionCache, connection_cache

        elsewhere = ConnectionCache()


        class PretendBackend:
            # What an app hands use_backend at start-up: any Backend works,
            # here the store of another in-memory cache stands in for Redis.
            def open_store(self, max_entries=None, count_near_hit=None):
                from pytest_conncache._memory import MemoryStore
                return MemoryStore(max_entries)

            def __repr__(self):
                return "<PretendBackend>"


        def start_app():
            connection_cache.use_backend(PretendBackend())


        def test_app_start_up_moves_the_cache():
            start_app()
            connection_cache.set("user:1", "left behind")
            assert connection_cache.backend is not None


        def test_next_test_is_back_in_memory_and_empty():
            assert connection_cache.backend is None
            assert connection_cache.get("user:1") is None
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*test_app.py:18: ConncacheWarning: connection_cache.use_backend() moved the shared "
            "cache to <PretendBackend> during test_app.py::test_app_start_up_moves_the_cache, "
            "and it stayed there*The plugin put it back in memory*--conncache-backend=URL*",
        ]
    )


def test_moving_the_singleton_at_import_warns_before_the_first_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(
        """
        from pytest_conncache import ConnectionCache, connection_cache

        class PretendBackend:
            def open_store(self, max_entries=None, count_near_hit=None):
                from pytest_conncache._memory import MemoryStore
                return MemoryStore(max_entries)

        connection_cache.use_backend(PretendBackend())
        """
    )
    pytester.makepyfile(
        """
        from pytest_conncache import connection_cache

        def test_runs_in_memory():
            assert connection_cache.backend is None
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "*conftest.py:8: ConncacheWarning: *moved the shared cache to * before "
            "*test_runs_in_memory*"
        ]
    )


def test_a_fixture_that_moves_the_cache_back_raises_no_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_conncache import connection_cache

        class PretendBackend:
            def open_store(self, max_entries=None, count_near_hit=None):
                from pytest_conncache._memory import MemoryStore
                return MemoryStore(max_entries)

        @pytest.fixture
        def on_pretend_backend():
            connection_cache.use_backend(PretendBackend())
            yield
            connection_cache.use_backend(None)

        def test_uses_it(on_pretend_backend):
            assert connection_cache.backend is not None
        """
    )

    result = pytester.runpytest_subprocess("-W", "error::pytest.PytestWarning")

    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*ConncacheWarning*")


def test_a_leaked_clock_redirect_is_restored_with_a_warning(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import time
        from pytest_conncache import ConnectionCache, default_clock

        cache = ConnectionCache(default_ttl=10)

        def fake_time():
            return 1000.0

        def test_leaks_a_redirect():
            default_clock.redirect(fake_time)
            cache.set("k", 1)

        def test_clock_is_real_again():
            assert not default_clock.redirected
            before = time.monotonic()
            assert before <= cache.now() <= time.monotonic()
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly")

    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*.py:10: ConncacheWarning: pytest_conncache.default_clock was "
            "still redirected to <function fake_time at *> after the test*The plugin restored "
            "it; call default_clock.restore() when done, or use the frozen_clock fixture*",
        ]
    )


def test_frozen_clock_restores_the_clock_itself_without_a_warning(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import default_clock

        def test_frozen(frozen_clock):
            assert default_clock.redirected

        def test_after():
            assert not default_clock.redirected
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly", "-W", "error::pytest.PytestWarning")

    result.assert_outcomes(passed=2)


def test_with_warnings_as_errors_a_guard_fails_the_test_not_the_run(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from pytest_conncache import connection_cache, default_clock

        class PretendBackend:
            def open_store(self, max_entries=None, count_near_hit=None):
                from pytest_conncache._memory import MemoryStore
                return MemoryStore(max_entries)

        def test_moves_both():
            connection_cache.use_backend(PretendBackend())
            default_clock.redirect(lambda: 5.0)

        def test_after():
            assert connection_cache.backend is None
            assert not default_clock.redirected
        """
    )

    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:randomly")

    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_moves_both*", "*ConncacheWarning*"])
    result.stdout.no_fnmatch_line("*INTERNALERROR*")


@pytest.mark.parametrize("value", ['"no"', "0", "None"])
def test_marker_values_must_be_booleans(pytester: pytest.Pytester, value: str) -> None:
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.conncache(strict={value})
        def test_marked():
            pass
        """
    )

    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*@pytest.mark.conncache(strict=...) must be True or False, got *"]
    )
