"""How the plugin is registered, configured and turned off."""

from __future__ import annotations

import json

import pytest


def test_fixtures_are_listed_with_their_docstrings(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--fixtures")

    result.stdout.fnmatch_lines(
        [
            "*frozen_clock*",
            "*Frozen time for time.time(), datetime.now() and default-clock caches*",
            "*connection_cache*",
            "*The shared pytest_conncache.connection_cache, empty with zeroed stats*",
        ]
    )


def test_options_are_grouped_under_conncache(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("--help")

    result.stdout.fnmatch_lines(
        [
            "cache statistics and isolation (pytest-conncache):",
            "*--conncache-report*",
            "*--conncache-report-json=PATH*",
            "*conncache_isolate (bool)*",
        ]
    )


def test_p_no_conncache_turns_the_plugin_off(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_uses(connection_cache): pass")

    result = pytester.runpytest_subprocess("-p", "no:conncache")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'connection_cache' not found*"])


def test_report_option_is_unknown_without_the_plugin(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess("-p", "no:conncache", "--conncache-report")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --conncache-report*"])


def test_marker_is_registered_for_strict_markers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.conncache(isolate=False)
        def test_marked():
            pass
        """
    )

    result = pytester.runpytest_subprocess("--strict-markers")

    result.assert_outcomes(passed=1)


def test_marker_rejects_unknown_arguments(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.conncache(isolation=False)
        def test_marked():
            pass
        """
    )

    result = pytester.runpytest_subprocess()

    # Refused at collection, before any test runs.
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *::test_marked: @pytest.mark.conncache takes only isolate=True/False*isolation*"]
    )


def test_plugin_is_loaded_once_by_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_registered(request):
            manager = request.config.pluginmanager
            assert manager.get_plugin("conncache") is not None
            assert manager.get_plugin("conncache-tests") is not None
            assert manager.get_plugin("conncache-report") is None  # only with the report
        """
    )

    result = pytester.runpytest_subprocess()

    result.assert_outcomes(passed=1)


def test_a_bad_marker_on_a_class_is_refused_before_any_test_runs(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        import pytest

        def test_first():
            pass

        @pytest.mark.conncache(isolate="no")
        class TestMarked:
            def test_one(self):
                pass
        """
    )

    result = pytester.runpytest_subprocess()

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: *::TestMarked: @pytest.mark.conncache(isolate=...) must be True or False*"]
    )
    result.stdout.no_fnmatch_line("*test_first*PASSED*")


SESSION_MODULES = """
import json, sys

def pytest_sessionfinish(session):
    loaded = sorted(name for name in sys.modules if name.startswith("pytest_conncache"))
    with open("modules.json", "w") as out:
        json.dump(loaded, out)
"""


def _modules_at_the_end(pytester: pytest.Pytester, *args: str) -> list[str]:
    pytester.makeconftest(SESSION_MODULES)
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=2)
    loaded: list[str] = json.loads((pytester.path / "modules.json").read_text())
    return loaded


@pytest.mark.parametrize("args", [(), ("--conncache-report",)])
def test_a_run_that_uses_no_cache_never_imports_the_cache(
    pytester: pytest.Pytester, args: tuple[str, ...]
) -> None:
    pytester.makepyfile("def test_one(): pass\n\ndef test_two(): pass\n")

    loaded = _modules_at_the_end(pytester, *args)

    assert "pytest_conncache.plugin" in loaded
    assert "pytest_conncache._cache" not in loaded
    assert "pytest_conncache._singleton" not in loaded


def test_the_import_check_sees_a_cache_a_test_imported(pytester: pytest.Pytester) -> None:
    # Guard for the test above: a test that imports the cache shows up.
    pytester.makepyfile(
        """
        def test_one():
            from pytest_conncache import connection_cache
            connection_cache.set("k", 1)

        def test_two():
            pass
        """
    )

    loaded = _modules_at_the_end(pytester)

    assert "pytest_conncache._cache" in loaded
    assert "pytest_conncache._singleton" in loaded
