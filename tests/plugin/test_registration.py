"""How the plugin is registered, configured and turned off."""

from __future__ import annotations

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
