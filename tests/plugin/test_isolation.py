"""The connection_cache fixture and per-test isolation of every cache."""

from __future__ import annotations

import pytest

TWO_TESTS_SHARING_A_MODULE_CACHE = """
import pytest
from pytest_conncache import ConnectionCache

module_cache = ConnectionCache()

def test_first():
    module_cache.set("k", "from the first test")
    module_cache.get("k")

MARK
def test_second():
    assert module_cache.stats.hits == 0, "stats start at zero in every test"
    assert module_cache.keys() == EXPECTED_KEYS
"""


def _two_tests(mark: str, expected_keys: list[str]) -> str:
    return TWO_TESTS_SHARING_A_MODULE_CACHE.replace("MARK", mark).replace(
        "EXPECTED_KEYS", repr(expected_keys)
    )


def test_every_cache_is_emptied_before_each_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_two_tests("", []))

    pytester.runpytest().assert_outcomes(passed=2)


def test_ini_option_turns_isolation_off(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        conncache_isolate = false
        """
    )
    pytester.makepyfile(_two_tests("", ["k"]))

    pytester.runpytest().assert_outcomes(passed=2)


def test_marker_turns_isolation_off_for_one_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(_two_tests("@pytest.mark.conncache(isolate=False)", ["k"]))

    pytester.runpytest().assert_outcomes(passed=2)


def test_marker_can_turn_isolation_back_on(pytester: pytest.Pytester) -> None:
    pytester.makeini(
        """
        [pytest]
        asyncio_default_fixture_loop_scope = function
        conncache_isolate = false
        """
    )
    pytester.makepyfile(_two_tests("@pytest.mark.conncache(isolate=True)", []))

    pytester.runpytest().assert_outcomes(passed=2)


def test_isolation_keeps_no_cache_alive(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import gc
        import weakref
        from pytest_conncache import ConnectionCache

        refs = []

        def test_creates_a_cache():
            cache = ConnectionCache()
            cache.set("k", 1)
            refs.append(weakref.ref(cache))

        def test_cache_is_gone():
            gc.collect()
            assert refs[0]() is None
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_connection_cache_fixture_is_the_singleton(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest_conncache

        def test_same(connection_cache):
            assert connection_cache is pytest_conncache.connection_cache
        """
    )

    pytester.runpytest().assert_outcomes(passed=1)


def test_connection_cache_starts_empty_with_zeroed_stats(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_conncache import connection_cache as singleton

        @pytest.mark.conncache(isolate=False)
        def test_leaves_data():
            singleton.set("left", 1)
            singleton.get("left")

        def test_fixture(connection_cache):
            assert connection_cache.size() == 0
            assert connection_cache.stats.lookups == 0
            assert connection_cache.stats.sets == 0
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_connection_cache_is_emptied_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from pytest_conncache import connection_cache as singleton

        def test_fills(connection_cache):
            connection_cache.set("k", 1)

        @pytest.mark.conncache(isolate=False)
        def test_sees_it_empty():
            assert singleton.size() == 0
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_connection_cache_is_handed_over_as_is_without_isolation(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.conncache(isolate=False)

        def test_fills(connection_cache):
            connection_cache.set("k", 1)

        def test_still_there(connection_cache):
            assert connection_cache.keys() == ["k"]
            assert connection_cache.stats.sets == 0
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_the_closest_marker_wins_function_over_class_over_module(
    pytester: pytest.Pytester,
) -> None:
    # The shared cache itself, not the fixture (which also empties after an
    # isolated test): what each test finds shows what setup emptied.
    pytester.makepyfile(
        """
        import pytest
        from pytest_conncache import connection_cache as cache

        pytestmark = pytest.mark.conncache(isolate=False)

        def test_module_fills():
            cache.set("m", 1)

        def test_module_keeps():
            assert cache.keys() == ["m"]

        @pytest.mark.conncache(isolate=True)
        class TestIsolated:
            def test_class_empties(self):
                assert cache.keys() == []
                cache.set("c", 1)

            @pytest.mark.conncache(isolate=False)
            def test_function_keeps(self):
                assert cache.keys() == ["c"]

            @pytest.mark.parametrize(
                "n", [1, pytest.param(2, marks=pytest.mark.conncache(isolate=False))]
            )
            def test_params(self, n):
                assert cache.keys() == ([] if n == 1 else ["p1"])
                cache.set(f"p{n}", n)
        """
    )

    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=6)


def test_connection_cache_uses_the_frozen_clock(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_frozen_first(frozen_clock, connection_cache):
            connection_cache.set("k", 1, ttl=5)
            frozen_clock.advance(5)
            assert "k" not in connection_cache

        def test_cache_first(connection_cache, frozen_clock):
            connection_cache.set("k", 1, ttl=5)
            frozen_clock.advance(5)
            assert "k" not in connection_cache
        """
    )

    pytester.runpytest().assert_outcomes(passed=2)


def test_a_cache_first_imported_inside_a_test_is_counted_shown_and_emptied(
    pytester: pytest.Pytester,
) -> None:
    # The plugin imports no cache itself: here the app, and with it the
    # shared cache, is imported by a fixture during the first test.
    pytester.makepyfile(
        test_app="""
        import pytest

        @pytest.fixture
        def app_cache():
            from pytest_conncache import connection_cache
            return connection_cache

        def test_first(app_cache):
            app_cache.set("user:1", "ada")
            assert app_cache.get("user:1") == "grace"

        def test_second(app_cache):
            assert app_cache.keys() == []
            assert app_cache.stats.sets == 0
        """
    )

    result = pytester.runpytest_subprocess("-p", "no:randomly", "--conncache-report")

    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- conncache events -*",
            "2 cache events, times since the test started:",
            "*set *'user:1'*",
            "*hit *'user:1'*",
            "*= conncache report =*",
            "test_app.py::test_first * 1 * 0 *100.0% * 1 * 0 * 0 * 0",
        ]
    )
